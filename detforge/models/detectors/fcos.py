"""``FCOS``: backbone → FPN → :class:`FCOSHead` (MMDetection v2's thin single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["FCOS"]


@MODELS.register_module()
class FCOS(SingleStageDetector):
    """FCOS detector; the arguments of :class:`SingleStageDetector`."""
