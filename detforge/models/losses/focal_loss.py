"""``FocalLoss`` (Lin et al. 2017) in pure PyTorch, numerically MMDetection v2's.

For a logit ``x`` with ``p = sigmoid(x)`` and a binary target ``t`` the loss is
``alpha * (1 - p) ** gamma * -log(p)`` when ``t = 1`` and
``(1 - alpha) * p ** gamma * -log(1 - p)`` when ``t = 0`` — mmcv's ``sigmoid_focal_loss``
kernel; here ``-log`` comes from ``binary_cross_entropy_with_logits`` (v2's CPU path), which
stays finite for saturated logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.losses.utils import check_reduction, select_reduction, weight_reduce_loss
from detforge.registry import MODELS

__all__ = ["FocalLoss", "py_focal_loss_with_prob", "py_sigmoid_focal_loss", "sigmoid_focal_loss"]

AvgFactor = float | torch.Tensor | None


def _one_hot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, C]`` one-hot rows for labels in ``[0, C]``; label ``C`` (background) is all zero."""
    return F.one_hot(target, num_classes=num_classes + 1)[:, :num_classes]


def _match_weight(weight: torch.Tensor | None, loss: torch.Tensor) -> torch.Tensor | None:
    """Per-prior ``[N]`` weights become ``[N, 1]``; flattened ``[N * C]`` become ``[N, C]``."""
    if weight is None or weight.shape == loss.shape:
        return weight
    if weight.size(0) == loss.size(0):
        weight = weight.view(-1, 1)
    else:
        if weight.numel() != loss.numel():
            raise InvalidArgumentError(
                f"focal loss: weight of shape {tuple(weight.shape)} does not fit the loss of "
                f"shape {tuple(loss.shape)}"
            )
        weight = weight.view(loss.size(0), -1)
    if weight.ndim != loss.ndim:
        raise InvalidArgumentError(
            f"focal loss: weight of shape {tuple(weight.shape)} does not fit the loss of "
            f"shape {tuple(loss.shape)}"
        )
    return weight


def py_sigmoid_focal_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    gamma: float = 2.0,
    alpha: float = 0.25,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """Sigmoid focal loss for one-hot (or soft) targets ``[N, C]`` and logits ``[N, C]``.

    Example:
        >>> py_sigmoid_focal_loss(torch.zeros(1, 2), torch.tensor([[1, 0]]), reduction='sum')
        tensor(0.1733)
    """
    pred_sigmoid = pred.sigmoid()
    target = target.type_as(pred)
    pt = (1 - pred_sigmoid) * target + pred_sigmoid * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight
    return weight_reduce_loss(loss, _match_weight(weight, loss), reduction, avg_factor)


def py_focal_loss_with_prob(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    gamma: float = 2.0,
    alpha: float = 0.25,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """Focal loss for predictions that are already probabilities (``activated=True``).

    ``target`` is ``[N]`` class indices (background = ``C``) or ``[N, C]`` one-hot.
    """
    if pred.dim() != target.dim():
        target = _one_hot(target, pred.size(1))
    target = target.type_as(pred)
    pt = (1 - pred) * target + pred * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    loss = F.binary_cross_entropy(pred, target, reduction="none") * focal_weight
    return weight_reduce_loss(loss, _match_weight(weight, loss), reduction, avg_factor)


def sigmoid_focal_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    gamma: float = 2.0,
    alpha: float = 0.25,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """Sigmoid focal loss for class-index targets, like mmcv's ``sigmoid_focal_loss`` op.

    Args:
        pred: ``Tensor[N, C]`` logits.
        target: ``Tensor[N]`` labels in ``[0, C]``; ``C`` is the background.
        weight: ``[N]``, ``[N, C]`` or flattened ``[N * C]`` weights.
        gamma: Focusing parameter.
        alpha: Weight of the positives (``1 - alpha`` for the negatives).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divide the sum by this for ``'mean'``.

    Example:
        >>> sigmoid_focal_loss(torch.zeros(1, 2), torch.tensor([0]), reduction='sum')
        tensor(0.1733)
    """
    return py_sigmoid_focal_loss(
        pred, _one_hot(target, pred.size(1)), weight, gamma, alpha, reduction, avg_factor
    )


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Sigmoid focal loss (``mmdet.models.losses.FocalLoss``).

    Args:
        use_sigmoid: Must be True (v2 has no softmax focal loss).
        gamma: Focusing parameter.
        alpha: Weight of the positives.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.
        activated: The predictions are probabilities, not logits.

    Example:
        >>> loss = FocalLoss(gamma=2.0, alpha=0.25)
        >>> round(loss(torch.zeros(2, 2), torch.tensor([0, 2]), avg_factor=1).item(), 4)
        0.4332
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        gamma: float = 2.0,
        alpha: float = 0.25,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        activated: bool = False,
    ) -> None:
        super().__init__()
        if use_sigmoid is not True:
            raise NotImplementedError("FocalLoss: only the sigmoid focal loss is supported")
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = check_reduction(reduction, "FocalLoss")
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss.

        Args:
            pred: ``Tensor[N, C]`` logits (probabilities with ``activated``).
            target: ``Tensor[N]`` labels in ``[0, C]`` (``C`` = background) or ``[N, C]``
                one-hot targets.
            weight: ``[N]``, ``[N, C]`` or ``[N * C]`` weights.
            avg_factor: Divide the sum by this for ``'mean'``.
            reduction_override: Replace ``reduction`` for this call.
        """
        reduction = select_reduction(self.reduction, reduction_override, "FocalLoss")
        if self.activated:
            loss = py_focal_loss_with_prob(
                pred, target, weight, self.gamma, self.alpha, reduction, avg_factor
            )
        else:
            if pred.dim() != target.dim():
                target = _one_hot(target, pred.size(1))
            loss = py_sigmoid_focal_loss(
                pred, target, weight, self.gamma, self.alpha, reduction, avg_factor
            )
        return self.loss_weight * loss
