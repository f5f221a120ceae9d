"""Necks (registered in ``MODELS``): ``FPN``, ``HRFPN``."""

from detforge.models.necks.fpn import FPN
from detforge.models.necks.hrfpn import HRFPN

__all__ = ["FPN", "HRFPN"]
