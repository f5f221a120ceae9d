"""``PAA``: backbone → FPN → :class:`PAAHead` (MMDetection v2's thin single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["PAA"]


@MODELS.register_module()
class PAA(SingleStageDetector):
    """PAA detector; the arguments of :class:`SingleStageDetector`."""
