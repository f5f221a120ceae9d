"""Losses with MMDetection v2's names, arguments and reduction semantics (``MODELS`` registry).

Every loss module is called as ``loss(pred, target, weight=None, avg_factor=None,
reduction_override=None)`` and multiplies its result by ``loss_weight``; see
:mod:`detforge.models.losses.utils` for how ``weight``, ``avg_factor`` and ``reduction``
combine.
"""

from detforge.models.losses.accuracy import Accuracy, accuracy
from detforge.models.losses.balanced_l1_loss import BalancedL1Loss, balanced_l1_loss
from detforge.models.losses.cross_entropy_loss import (
    CrossEntropyLoss,
    binary_cross_entropy,
    cross_entropy,
    mask_cross_entropy,
)
from detforge.models.losses.focal_loss import (
    FocalLoss,
    py_focal_loss_with_prob,
    py_sigmoid_focal_loss,
    sigmoid_focal_loss,
)
from detforge.models.losses.gfocal_loss import (
    DistributionFocalLoss,
    QualityFocalLoss,
    distribution_focal_loss,
    quality_focal_loss,
    quality_focal_loss_tensor_target,
    quality_focal_loss_with_prob,
)
from detforge.models.losses.ghm_loss import GHMC, GHMR, harmonizing_weights
from detforge.models.losses.iou_loss import (
    BoundedIoULoss,
    CIoULoss,
    DIoULoss,
    GIoULoss,
    IoULoss,
    bounded_iou_loss,
    ciou_loss,
    diou_loss,
    giou_loss,
    iou_loss,
)
from detforge.models.losses.seesaw_loss import SeesawLoss, seesaw_ce_loss
from detforge.models.losses.smooth_l1_loss import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from detforge.models.losses.utils import reduce_loss, weight_reduce_loss, weighted_loss
from detforge.models.losses.varifocal_loss import VarifocalLoss, varifocal_loss

__all__ = [
    "GHMC",
    "GHMR",
    "Accuracy",
    "BalancedL1Loss",
    "BoundedIoULoss",
    "CIoULoss",
    "CrossEntropyLoss",
    "DIoULoss",
    "DistributionFocalLoss",
    "FocalLoss",
    "GIoULoss",
    "IoULoss",
    "L1Loss",
    "QualityFocalLoss",
    "SeesawLoss",
    "SmoothL1Loss",
    "VarifocalLoss",
    "accuracy",
    "balanced_l1_loss",
    "binary_cross_entropy",
    "bounded_iou_loss",
    "ciou_loss",
    "cross_entropy",
    "diou_loss",
    "distribution_focal_loss",
    "giou_loss",
    "harmonizing_weights",
    "iou_loss",
    "l1_loss",
    "mask_cross_entropy",
    "py_focal_loss_with_prob",
    "py_sigmoid_focal_loss",
    "quality_focal_loss",
    "quality_focal_loss_tensor_target",
    "quality_focal_loss_with_prob",
    "reduce_loss",
    "seesaw_ce_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "varifocal_loss",
    "weight_reduce_loss",
    "weighted_loss",
]
