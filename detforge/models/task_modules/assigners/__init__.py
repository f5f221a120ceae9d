"""Assigners, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.assigners.approx_max_iou_assigner import ApproxMaxIoUAssigner
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.assigners.atss_assigner import ATSSAssigner
from detforge.models.task_modules.assigners.center_region_assigner import CenterRegionAssigner
from detforge.models.task_modules.assigners.grid_assigner import GridAssigner
from detforge.models.task_modules.assigners.hungarian_assigner import HungarianAssigner
from detforge.models.task_modules.assigners.max_iou_assigner import (
    AscendMaxIoUAssigner,
    MaxIoUAssigner,
)
from detforge.models.task_modules.assigners.point_assigner import PointAssigner
from detforge.models.task_modules.assigners.sim_ota_assigner import SimOTAAssigner
from detforge.models.task_modules.assigners.task_aligned_assigner import TaskAlignedAssigner
from detforge.models.task_modules.assigners.uniform_assigner import UniformAssigner

__all__ = [
    "ATSSAssigner",
    "ApproxMaxIoUAssigner",
    "AscendMaxIoUAssigner",
    "AssignResult",
    "CenterRegionAssigner",
    "GridAssigner",
    "HungarianAssigner",
    "MaxIoUAssigner",
    "PointAssigner",
    "SimOTAAssigner",
    "TaskAlignedAssigner",
    "UniformAssigner",
]
