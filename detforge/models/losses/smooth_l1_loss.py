"""``SmoothL1Loss`` and ``L1Loss`` for box regression (MMDetection v2)."""

from __future__ import annotations

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.losses.utils import check_reduction, select_reduction, weighted_loss
from detforge.registry import MODELS

__all__ = ["L1Loss", "SmoothL1Loss", "l1_loss", "smooth_l1_loss"]

AvgFactor = float | torch.Tensor | None


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.size() != target.size():
        raise InvalidArgumentError(
            f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape"
        )


@weighted_loss
def smooth_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Element-wise smooth L1: ``0.5 d² / beta`` for ``d < beta``, else ``d - 0.5 beta``.

    Example:
        >>> smooth_l1_loss(torch.tensor([0., 0.]), torch.tensor([0.5, 3.]), reduction='none')
        tensor([0.1250, 2.5000])
    """
    if beta <= 0:
        raise InvalidArgumentError(f"smooth_l1_loss: beta must be positive, got {beta}")
    if target.numel() == 0:
        return pred.sum() * 0
    _check_same_shape(pred, target, "smooth_l1_loss")
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


@weighted_loss
def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise ``|pred - target|``.

    Example:
        >>> l1_loss(torch.tensor([0., 0.]), torch.tensor([0.5, -3.]))
        tensor(1.7500)
    """
    if target.numel() == 0:
        return pred.sum() * 0
    _check_same_shape(pred, target, "l1_loss")
    return torch.abs(pred - target)


@MODELS.register_module()
class SmoothL1Loss(nn.Module):
    """Smooth L1 loss.

    Args:
        beta: Where the loss turns from quadratic to linear.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> SmoothL1Loss(beta=1.0)(torch.zeros(2, 4), torch.ones(2, 4), avg_factor=2).item()
        2.0
    """

    def __init__(
        self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.beta = beta
        self.reduction = check_reduction(reduction, "SmoothL1Loss")
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
        reduction = select_reduction(self.reduction, reduction_override, "SmoothL1Loss")
        return self.loss_weight * smooth_l1_loss(
            pred, target, weight, beta=self.beta, reduction=reduction, avg_factor=avg_factor
        )


@MODELS.register_module()
class L1Loss(nn.Module):
    """L1 loss.

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> L1Loss(loss_weight=2.0)(torch.zeros(2, 4), torch.ones(2, 4))
        tensor(2.)
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, "L1Loss")
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
        reduction = select_reduction(self.reduction, reduction_override, "L1Loss")
        return self.loss_weight * l1_loss(
            pred, target, weight, reduction=reduction, avg_factor=avg_factor
        )
