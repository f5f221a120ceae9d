"""Small helpers shared across detforge."""

from detforge.utils.fileio import atomic_write
from detforge.utils.suggest import close_matches, did_you_mean

__all__ = ["atomic_write", "close_matches", "did_you_mean"]
