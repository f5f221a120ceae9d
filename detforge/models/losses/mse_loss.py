"""``MSELoss`` (MMDetection v2): Mask Scoring R-CNN's mask-IoU regression loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.losses.utils import check_reduction, select_reduction, weighted_loss
from detforge.registry import MODELS

__all__ = ["MSELoss", "mse_loss"]

AvgFactor = float | torch.Tensor | None


@weighted_loss
def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise ``(pred - target)²``.

    Example:
        >>> mse_loss(torch.tensor([0., 1.]), torch.tensor([2., 1.]))
        tensor(2.)
    """
    return F.mse_loss(pred, target, reduction="none")


@MODELS.register_module()
class MSELoss(nn.Module):
    """Mean squared error loss.

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> MSELoss(loss_weight=0.5)(torch.zeros(2), torch.ones(2))
        tensor(0.5000)
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, "MSELoss")
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
        reduction = select_reduction(self.reduction, reduction_override, "MSELoss")
        return self.loss_weight * mse_loss(
            pred, target, weight, reduction=reduction, avg_factor=avg_factor
        )
