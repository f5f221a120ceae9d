"""Training-target machinery of the heads, registered in ``TASK_UTILS`` on import.

``prior_generators`` make anchors, ``iou_calculators`` measure overlaps, ``assigners`` match
priors to ground truths, ``samplers`` pick the priors that enter the loss and ``coders`` turn
boxes into regression targets and back; ``match_costs`` price query-to-truth pairs for the
Hungarian assigner. Each follows MMDetection v2's class of the same name.
"""

from detforge.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from detforge.models.task_modules.coders import DeltaXYWHBBoxCoder, bbox2delta, delta2bbox
from detforge.models.task_modules.iou_calculators import BboxOverlaps2D
from detforge.models.task_modules.match_costs import (
    BBoxL1Cost,
    ClassificationCost,
    FocalLossCost,
    IoUCost,
)
from detforge.models.task_modules.prior_generators import AnchorGenerator
from detforge.models.task_modules.samplers import (
    BaseSampler,
    PseudoSampler,
    RandomSampler,
    SamplingResult,
)

__all__ = [
    "AnchorGenerator",
    "AssignResult",
    "BBoxL1Cost",
    "BaseSampler",
    "BboxOverlaps2D",
    "ClassificationCost",
    "DeltaXYWHBBoxCoder",
    "FocalLossCost",
    "IoUCost",
    "MaxIoUAssigner",
    "PseudoSampler",
    "RandomSampler",
    "SamplingResult",
    "bbox2delta",
    "delta2bbox",
]
