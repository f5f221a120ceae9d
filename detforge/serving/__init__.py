"""``detforge serve``: an HTTP service (FastAPI + uvicorn) and a web page over
:mod:`detforge.apis.inference`.

:func:`~detforge.serving.app.create_app` builds the app; :mod:`~detforge.serving.security`
holds the refusals (paths, non-images, decompression bombs), :mod:`~detforge.serving.batching`
the micro-batching worker. The app itself needs the ``serve`` extra
(``pip install 'detforge[serve]'``); this package imports it only on first use.
"""

from typing import Any

from detforge.serving.batching import BatcherBusy, MicroBatcher
from detforge.serving.security import ServingError, decode_image, resolve_under_root

__all__ = [
    "BatcherBusy",
    "MicroBatcher",
    "ServingError",
    "create_app",
    "decode_image",
    "resolve_under_root",
]


def __getattr__(name: str) -> Any:
    # ``create_app`` imports FastAPI, so it loads on first use (PEP 562)
    if name == "create_app":
        from detforge.serving.app import create_app

        return create_app
    raise AttributeError(f"module 'detforge.serving' has no attribute {name!r}")
