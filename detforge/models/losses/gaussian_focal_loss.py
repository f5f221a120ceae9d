"""Gaussian focal loss (CornerNet, Law & Deng 2018): the keypoint-heatmap loss of CenterNet and
CornerNet, numerically MMDetection v2's.

``pred`` holds probabilities (the heads apply the sigmoid) and ``target`` a gaussian heatmap.
Positions where the target is exactly 1 are positives with loss ``-log(p + eps) (1 - p) **
alpha``; every other position is a negative with loss ``-log(1 - p + eps) p ** alpha``, weighted
by ``(1 - target) ** gamma`` so that positions near a peak are penalised less (``eps = 1e-12``).
"""

from __future__ import annotations

import torch
from torch import nn

from detforge.models.losses.utils import check_reduction, select_reduction, weighted_loss
from detforge.registry import MODELS

__all__ = ["GaussianFocalLoss", "gaussian_focal_loss"]

AvgFactor = float | torch.Tensor | None


@weighted_loss
def gaussian_focal_loss(
    pred: torch.Tensor, gaussian_target: torch.Tensor, alpha: float = 2.0, gamma: float = 4.0
) -> torch.Tensor:
    """Element-wise gaussian focal loss of probabilities ``pred`` (see the module docstring).

    Example:
        >>> pred = torch.tensor([0.5, 0.5])
        >>> gaussian_focal_loss(pred, torch.tensor([1.0, 0.5]), reduction='none')
        tensor([0.1733, 0.0108])
    """
    if pred.shape != gaussian_target.shape:
        raise ValueError(
            f"gaussian_focal_loss: pred {tuple(pred.shape)} and target "
            f"{tuple(gaussian_target.shape)} differ in shape"
        )
    eps = 1e-12
    pos_weights = gaussian_target.eq(1)
    neg_weights = (1 - gaussian_target).pow(gamma)
    pos_loss = -(pred + eps).log() * (1 - pred).pow(alpha) * pos_weights
    neg_loss = -(1 - pred + eps).log() * pred.pow(alpha) * neg_weights
    return pos_loss + neg_loss


@MODELS.register_module()
class GaussianFocalLoss(nn.Module):
    """Focal loss against gaussian heatmap targets (``mmdet.models.losses.GaussianFocalLoss``).

    Args:
        alpha: Exponent of the prediction's modulating factor.
        gamma: Exponent of the negatives' ``1 - target`` weight.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> GaussianFocalLoss()(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.5]), avg_factor=1)
        tensor(0.1841)
    """

    def __init__(
        self,
        alpha: float = 2.0,
        gamma: float = 4.0,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.reduction = check_reduction(reduction, "GaussianFocalLoss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of probabilities ``pred`` against the heatmap ``target``."""
        reduction = select_reduction(self.reduction, reduction_override, "GaussianFocalLoss")
        return self.loss_weight * gaussian_focal_loss(
            pred,
            target,
            weight,
            alpha=self.alpha,
            gamma=self.gamma,
            reduction=reduction,
            avg_factor=avg_factor,
        )
