"""``concurrent``: v2's async helper that runs each awaited inference on its own CUDA stream.

The v2 async API example (``mmdet.utils.contextmanagers.concurrent``) ports unchanged::

    streamqueue = asyncio.Queue()
    for _ in range(3):
        streamqueue.put_nowait(torch.cuda.Stream(device='cuda:0'))
    async with concurrent(streamqueue):
        result = await async_inference_detector(model, img)

Without CUDA the body simply runs (the queue is not touched), as in v2.

Example:
    >>> import asyncio
    >>> async def run():
    ...     queue = asyncio.Queue()
    ...     async with concurrent(queue):
    ...         return 'ran'
    >>> asyncio.run(run())
    'ran'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import torch

__all__ = ["concurrent"]

logger = logging.getLogger("detforge")


@contextlib.asynccontextmanager
async def concurrent(
    streamqueue: asyncio.Queue[Any], trace_name: str = "concurrent", name: str = "stream"
) -> AsyncIterator[None]:
    """Run the body on a CUDA stream taken from ``streamqueue``, then put the stream back.

    Args:
        streamqueue: The pool of ``torch.cuda.Stream`` objects to run on.
        trace_name: Names the run in debug logs.
        name: Names the stream in debug logs.

    Raises:
        TypeError: the queue holds something other than a ``torch.cuda.Stream``.
    """
    if not torch.cuda.is_available():
        yield
        return
    initial = torch.cuda.current_stream()
    with torch.cuda.stream(initial):
        stream = await streamqueue.get()
        try:
            if not isinstance(stream, torch.cuda.Stream):
                raise TypeError(
                    f"concurrent: the stream queue must hold torch.cuda.Stream objects, got "
                    f"{type(stream).__name__}"
                )
            with torch.cuda.stream(stream):
                logger.debug("%s %s is starting, stream: %s", trace_name, name, stream)
                yield
                logger.debug("%s %s has finished, stream: %s", trace_name, name, stream)
        finally:
            streamqueue.task_done()
            streamqueue.put_nowait(stream)
