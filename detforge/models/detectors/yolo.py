"""``YOLOV3`` and ``YOLOF``: thin single-stage detector subclasses (v2)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["YOLOF", "YOLOV3"]


@MODELS.register_module()
class YOLOV3(SingleStageDetector):
    """YOLOv3 detector (backbone → YOLOV3Neck → YOLOV3Head); :class:`SingleStageDetector`'s
    arguments."""


@MODELS.register_module()
class YOLOF(SingleStageDetector):
    """YOLOF detector (C5 backbone → DilatedEncoder → YOLOFHead); :class:`SingleStageDetector`'s
    arguments."""
