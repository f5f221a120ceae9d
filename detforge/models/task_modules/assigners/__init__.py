"""Assigners, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.assigners.atss_assigner import ATSSAssigner
from detforge.models.task_modules.assigners.center_region_assigner import CenterRegionAssigner
from detforge.models.task_modules.assigners.max_iou_assigner import MaxIoUAssigner
from detforge.models.task_modules.assigners.task_aligned_assigner import TaskAlignedAssigner

__all__ = [
    "ATSSAssigner",
    "AssignResult",
    "CenterRegionAssigner",
    "MaxIoUAssigner",
    "TaskAlignedAssigner",
]
