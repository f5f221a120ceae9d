"""``NASFCOS``: backbone → NASFCOS_FPN → :class:`NASFCOSHead` (MMDetection v2's thin
single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["NASFCOS"]


@MODELS.register_module()
class NASFCOS(SingleStageDetector):
    """NAS-FCOS detector; the arguments of :class:`SingleStageDetector`."""
