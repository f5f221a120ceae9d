"""Necks (registered in ``MODELS``): ``FPN``, ``DyHead``."""

from detforge.models.necks.dyhead import DyHead
from detforge.models.necks.fpn import FPN

__all__ = ["FPN", "DyHead"]
