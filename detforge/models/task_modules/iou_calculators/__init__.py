"""IoU calculators, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.iou_calculators.bbox_overlaps_2d import (
    BboxOverlaps2D,
    build_iou_calculator,
    cast_tensor_type,
)

__all__ = ["BboxOverlaps2D", "build_iou_calculator", "cast_tensor_type"]
