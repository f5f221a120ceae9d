"""``ATSS``: backbone → FPN → :class:`ATSSHead` (MMDetection v2's thin single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["ATSS"]


@MODELS.register_module()
class ATSS(SingleStageDetector):
    """ATSS detector; the arguments of :class:`SingleStageDetector`."""
