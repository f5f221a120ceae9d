"""Box coders, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.coders.delta_xywh_bbox_coder import (
    DeltaXYWHBBoxCoder,
    bbox2delta,
    delta2bbox,
)
from detforge.models.task_modules.coders.distance_point_bbox_coder import (
    DistancePointBBoxCoder,
)
from detforge.models.task_modules.coders.yolo_bbox_coder import YOLOBBoxCoder

__all__ = [
    "DeltaXYWHBBoxCoder",
    "DistancePointBBoxCoder",
    "YOLOBBoxCoder",
    "bbox2delta",
    "delta2bbox",
]
