"""Necks (registered in ``MODELS``): ``FPN``, ``RFP``."""

from detforge.models.necks.fpn import FPN
from detforge.models.necks.rfp import ASPP, RFP

__all__ = ["ASPP", "FPN", "RFP"]
