"""``VFNet``: VarifocalNet (backbone → FPN → :class:`VFNetHead`)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["VFNet"]


@MODELS.register_module()
class VFNet(SingleStageDetector):
    """VarifocalNet, an IoU-aware dense detector; the arguments of :class:`SingleStageDetector`."""
