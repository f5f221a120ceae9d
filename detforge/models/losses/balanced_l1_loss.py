"""``BalancedL1Loss`` (Libra R-CNN, Pang et al. 2019) as in MMDetection v2."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.losses.utils import check_reduction, select_reduction, weighted_loss
from detforge.registry import MODELS

__all__ = ["BalancedL1Loss", "balanced_l1_loss"]

AvgFactor = float | torch.Tensor | None


@weighted_loss
def balanced_l1_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    beta: float = 1.0,
    alpha: float = 0.5,
    gamma: float = 1.5,
) -> torch.Tensor:
    """Element-wise balanced L1 loss.

    With ``d = |pred - target|`` and ``b = e^(gamma / alpha) - 1``: for ``d < beta``
    ``alpha / b * (b d + 1) * log(b d / beta + 1) - alpha d``, else
    ``gamma d + gamma / b - alpha beta``.

    Example:
        >>> balanced_l1_loss(torch.zeros(2), torch.tensor([0.5, 2.]), reduction='none')
        tensor([0.4006, 2.5786])
    """
    if beta <= 0:
        raise InvalidArgumentError(f"balanced_l1_loss: beta must be positive, got {beta}")
    if target.numel() == 0:
        return pred.sum() * 0
    if pred.size() != target.size():
        raise InvalidArgumentError(
            f"balanced_l1_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ"
        )
    diff = torch.abs(pred - target)
    b = np.e ** (gamma / alpha) - 1
    return torch.where(
        diff < beta,
        alpha / b * (b * diff + 1) * torch.log(b * diff / beta + 1) - alpha * diff,
        gamma * diff + gamma / b - alpha * beta,
    )


@MODELS.register_module()
class BalancedL1Loss(nn.Module):
    """Balanced L1 loss.

    Args:
        alpha: Promotes the gradient of inliers.
        gamma: Upper bound of the gradient (outliers).
        beta: Where the two pieces meet.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> BalancedL1Loss()(torch.zeros(1, 4), torch.zeros(1, 4))
        tensor(0.)
    """

    def __init__(
        self,
        alpha: float = 0.5,
        gamma: float = 1.5,
        beta: float = 1.0,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.beta = beta
        self.reduction = check_reduction(reduction, "BalancedL1Loss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of ``pred`` and ``target`` (same shape)."""
        reduction = select_reduction(self.reduction, reduction_override, "BalancedL1Loss")
        return self.loss_weight * balanced_l1_loss(
            pred,
            target,
            weight,
            alpha=self.alpha,
            gamma=self.gamma,
            beta=self.beta,
            reduction=reduction,
            avg_factor=avg_factor,
        )
