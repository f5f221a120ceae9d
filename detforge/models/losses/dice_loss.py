"""``DiceLoss`` (MMDetection v2.28): one minus the Dice coefficient of each mask.

For a prediction ``p`` and a target ``t`` flattened per sample, with ``a = sum(p * t)``:

- ``naive_dice=False`` (V-Net, the default): ``d = 2a / ((sum(p^2) + eps) + (sum(t^2) + eps))``;
- ``naive_dice=True``: ``d = (2a + eps) / (sum(p) + sum(t) + eps)``;

the per-sample loss ``1 - d`` is weighted and reduced as every loss (``avg_factor``), times
``loss_weight``. ``activate=True`` applies the sigmoid to ``pred`` first.
"""

from __future__ import annotations

import torch
from torch import nn

from detforge.errors import ConfigValueError
from detforge.models.losses.utils import weight_reduce_loss
from detforge.registry import MODELS

__all__ = ["DiceLoss", "dice_loss"]


def dice_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    eps: float = 1e-3,
    reduction: str = "mean",
    naive_dice: bool = False,
    avg_factor: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Dice loss of ``pred [N, *]`` (probabilities) against ``target [N, *]``.

    Example:
        >>> pred = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
        >>> target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> dice_loss(pred, target, eps=0.0, reduction='none').tolist()
        [0.0, 0.3333333134651184]
    """
    p = pred.flatten(1)
    t = target.flatten(1).float()
    a = (p * t).sum(1)
    if naive_dice:
        d = (2 * a + eps) / (p.sum(1) + t.sum(1) + eps)
    else:
        d = 2 * a / (((p * p).sum(1) + eps) + ((t * t).sum(1) + eps))
    loss = 1 - d
    if weight is not None and (weight.ndim != loss.ndim or len(weight) != len(pred)):
        raise ValueError(
            f"dice_loss: weight must be [N] for N={len(pred)} masks, got {tuple(weight.shape)}"
        )
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class DiceLoss(nn.Module):
    """Dice loss (``mmdet.models.losses.DiceLoss``, v2.28).

    Args:
        use_sigmoid: Activation of ``activate`` (only the sigmoid is supported).
        activate: Apply the sigmoid to the predictions (``False``: they are probabilities).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        naive_dice: The first-power denominator (see the module docstring).
        loss_weight: Factor on the loss.
        eps: Smoothing term.
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        activate: bool = True,
        reduction: str = "mean",
        naive_dice: bool = False,
        loss_weight: float = 1.0,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if activate and not use_sigmoid:
            raise ConfigValueError("DiceLoss: activate=True needs use_sigmoid=True")
        self.use_sigmoid = use_sigmoid
        self.activate = activate
        self.reduction = reduction
        self.naive_dice = naive_dice
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        reduction_override: str | None = None,
        avg_factor: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``loss_weight * dice_loss(...)`` of ``pred [N, *]`` and ``target [N, *]``."""
        reduction = reduction_override or self.reduction
        if self.activate:
            pred = pred.sigmoid()
        return self.loss_weight * dice_loss(
            pred,
            target,
            weight,
            eps=self.eps,
            reduction=reduction,
            naive_dice=self.naive_dice,
            avg_factor=avg_factor,
        )
