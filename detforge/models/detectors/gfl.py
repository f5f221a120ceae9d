"""``GFL``: the Generalized Focal Loss detector (backbone → FPN → :class:`GFLHead`)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["GFL"]


@MODELS.register_module()
class GFL(SingleStageDetector):
    """Generalized Focal Loss detector; the arguments of :class:`SingleStageDetector`."""
