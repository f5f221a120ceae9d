"""Necks (registered in ``MODELS``): ``FPN``."""

from detforge.models.necks.fpn import FPN

__all__ = ["FPN"]
