"""``RepPointsDetector``: backbone → FPN → :class:`RepPointsHead` (MMDetection v2's thin
single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["RepPointsDetector"]


@MODELS.register_module()
class RepPointsDetector(SingleStageDetector):
    """RepPoints detector; the arguments of :class:`SingleStageDetector`."""
