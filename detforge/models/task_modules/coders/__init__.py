"""Box coders, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.coders.delta_xywh_bbox_coder import (
    DeltaXYWHBBoxCoder,
    bbox2delta,
    delta2bbox,
)

__all__ = ["DeltaXYWHBBoxCoder", "bbox2delta", "delta2bbox"]
