"""Assigners, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.assigners.atss_assigner import ATSSAssigner
from detforge.models.task_modules.assigners.grid_assigner import GridAssigner
from detforge.models.task_modules.assigners.max_iou_assigner import (
    AscendMaxIoUAssigner,
    MaxIoUAssigner,
)
from detforge.models.task_modules.assigners.uniform_assigner import UniformAssigner

__all__ = [
    "ATSSAssigner",
    "AscendMaxIoUAssigner",
    "AssignResult",
    "GridAssigner",
    "MaxIoUAssigner",
    "UniformAssigner",
]
