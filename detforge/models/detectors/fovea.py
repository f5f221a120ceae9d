"""``FOVEA``: backbone → FPN → :class:`FoveaHead` (MMDetection v2's thin single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["FOVEA"]


@MODELS.register_module()
class FOVEA(SingleStageDetector):
    """FoveaBox detector; the arguments of :class:`SingleStageDetector`."""
