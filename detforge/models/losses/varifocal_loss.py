"""Varifocal Loss (Zhang et al. 2021, VarifocalNet), numerically MMDetection v2's.

The target ``q`` of each (prior, class) pair is the IoU-aware classification score: the IoU
between the predicted and the ground-truth box for the ground-truth class of a positive prior,
0 elsewhere. With ``p = sigmoid(x)`` the element loss is ``BCE(x, q)`` weighted by ``q``
(``iou_weighted``; 1 otherwise) for positive pairs (``q > 0``) and by ``alpha * |p - q| **
gamma`` (= ``alpha * p ** gamma``) for negative ones, so only negatives are down-weighted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.losses.utils import check_reduction, select_reduction, weight_reduce_loss
from detforge.registry import MODELS

__all__ = ["VarifocalLoss", "varifocal_loss"]

AvgFactor = float | torch.Tensor | None


def varifocal_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    alpha: float = 0.75,
    gamma: float = 2.0,
    iou_weighted: bool = True,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """Varifocal loss of logits ``pred`` ``[N, C]`` against soft targets ``target`` ``[N, C]``.

    Args:
        pred: ``Tensor[N, C]`` logits.
        target: ``Tensor[N, C]`` IoU-aware targets in ``[0, 1]``.
        weight: Element-wise weights broadcastable to ``[N, C]``.
        alpha: Weight of the negatives.
        gamma: Exponent of the negatives' modulating factor.
        iou_weighted: Weight positives by their target (else by 1).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divide the sum by this for ``'mean'``.

    Example:
        >>> varifocal_loss(torch.zeros(1, 2), torch.tensor([[0.5, 0.]]), reduction='sum')
        tensor(0.4765)
    """
    if pred.shape != target.shape:
        raise InvalidArgumentError(
            f"varifocal_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must "
            "have the same shape"
        )
    prob = pred.sigmoid()
    target = target.type_as(pred)
    positive = (target > 0.0).float()
    negative = (target <= 0.0).float()
    pos_weight = target * positive if iou_weighted else positive
    focal_weight = pos_weight + alpha * (prob - target).abs().pow(gamma) * negative
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class VarifocalLoss(nn.Module):
    """Varifocal Loss (``mmdet.models.losses.VarifocalLoss``).

    Args:
        use_sigmoid: Must be True (v2 has only the sigmoid form).
        alpha: Weight of the negatives (``>= 0``).
        gamma: Exponent of the negatives' modulating factor.
        iou_weighted: Weight positives by their IoU target.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> vfl = VarifocalLoss()
        >>> vfl(torch.zeros(1, 2), torch.tensor([[0.5, 0.]]), avg_factor=1.0)
        tensor(0.4765)
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        alpha: float = 0.75,
        gamma: float = 2.0,
        iou_weighted: bool = True,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if use_sigmoid is not True:
            raise NotImplementedError("VarifocalLoss: only use_sigmoid=True is supported")
        if alpha < 0:
            raise InvalidArgumentError(f"VarifocalLoss: alpha must be >= 0, got {alpha}")
        self.use_sigmoid = use_sigmoid
        self.alpha = alpha
        self.gamma = gamma
        self.iou_weighted = iou_weighted
        self.reduction = check_reduction(reduction, "VarifocalLoss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of logits ``pred [N, C]`` against IoU targets ``target [N, C]``."""
        reduction = select_reduction(self.reduction, reduction_override, "VarifocalLoss")
        return self.loss_weight * varifocal_loss(
            pred,
            target,
            weight,
            alpha=self.alpha,
            gamma=self.gamma,
            iou_weighted=self.iou_weighted,
            reduction=reduction,
            avg_factor=avg_factor,
        )
