"""``FSAF``: backbone → FPN → :class:`FSAFHead` (MMDetection v2's thin single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["FSAF"]


@MODELS.register_module()
class FSAF(SingleStageDetector):
    """FSAF detector; the arguments of :class:`SingleStageDetector`."""
