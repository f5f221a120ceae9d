"""``Corrupt``: v2's robustness-benchmark pipeline step (corrupts ``results['img']``).

The corruptions themselves are in :mod:`detforge.utils.image.corruptions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detforge.registry import TRANSFORMS
from detforge.utils.image.corruptions import CORRUPTIONS, corrupt

__all__ = ["Corrupt"]


@TRANSFORMS.register_module()
class Corrupt:
    """Pipeline step: corrupt ``results['img']`` (v2's ``Corrupt``; put it after loading).

    Args:
        corruption: One of :data:`~detforge.utils.image.corruptions.CORRUPTIONS`.
        severity: 0 (nothing) to 5.
        seed: Seed of the random parts; default derived from each image.

    Example:
        >>> step = Corrupt(corruption='pixelate', severity=3)
        >>> step(dict(img=np.zeros((8, 8, 3), np.uint8)))['img'].shape
        (8, 8, 3)
    """

    def __init__(self, corruption: str, severity: int = 1, seed: int | None = None) -> None:
        if corruption not in CORRUPTIONS:
            raise KeyError(
                f"Corrupt: unknown corruption {corruption!r}; choose from {', '.join(CORRUPTIONS)}"
            )
        if not 0 <= int(severity) <= 5:
            raise ValueError(f"Corrupt: severity must be in 0..5, got {severity}")
        self.corruption = corruption
        self.severity = int(severity)
        self.seed = seed

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "img" not in results:
            raise KeyError("Corrupt needs results['img']; put it after LoadImageFromFile")
        img = np.asarray(results["img"])
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        results["img"] = corrupt(img, self.corruption, self.severity, seed=self.seed)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(corruption={self.corruption}, severity={self.severity})"
