"""``AutoAssign``: backbone → FPN → :class:`AutoAssignHead` (MMDetection v2's thin single-stage
subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["AutoAssign"]


@MODELS.register_module()
class AutoAssign(SingleStageDetector):
    """AutoAssign detector; the arguments of :class:`SingleStageDetector`."""
