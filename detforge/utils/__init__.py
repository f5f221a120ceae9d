"""Small helpers shared across detforge."""

from typing import Any

from detforge.utils.fileio import atomic_write
from detforge.utils.suggest import close_matches, did_you_mean

__all__ = ["VideoReader", "atomic_write", "close_matches", "did_you_mean"]


def __getattr__(name: str) -> Any:
    """``VideoReader`` (mmcv's name) is imported on first use: it needs OpenCV, which the
    command line should not load just to start."""
    if name == "VideoReader":
        from detforge.utils.video import VideoReader

        return VideoReader
    raise AttributeError(f"module 'detforge.utils' has no attribute {name!r}")
