"""``YOLOV3`` (and v2's other YOLO-named single-stage detectors): thin v2 subclasses."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["YOLOV3"]


@MODELS.register_module()
class YOLOV3(SingleStageDetector):
    """YOLOv3 detector (backbone → YOLOV3Neck → YOLOV3Head); :class:`SingleStageDetector`'s
    arguments."""
