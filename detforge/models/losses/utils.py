"""Loss reduction shared by every loss: element-wise weights, ``avg_factor``, ``reduction``.

MMDetection v2's conventions (``mmdet/models/losses/utils.py``): a loss is computed per
element, multiplied by ``weight``, then reduced: ``'none'`` keeps it, ``'sum'`` sums it,
``'mean'`` averages it, or divides the sum by ``avg_factor`` when one is given (usually the
number of positive samples). One deliberate difference: the mean of an empty loss is 0 (with
a gradient), where v2 returned NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from detforge.errors import InvalidArgumentError

__all__ = [
    "REDUCTIONS",
    "check_reduction",
    "reduce_loss",
    "select_reduction",
    "weight_reduce_loss",
    "weighted_loss",
]

REDUCTIONS = ("none", "mean", "sum")

LossFunc = Callable[..., torch.Tensor]


def check_reduction(reduction: str, owner: str) -> str:
    """``reduction`` if it is one of ``'none'``, ``'mean'``, ``'sum'``; else a ValueError."""
    if reduction not in REDUCTIONS:
        raise InvalidArgumentError(
            f"{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}"
        )
    return reduction


def select_reduction(default: str, override: str | None, owner: str) -> str:
    """``override`` when given (and valid), else ``default``."""
    if override is None:
        return default
    return check_reduction(override, f"{owner} reduction_override")


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce an element-wise loss with ``'none'``, ``'mean'`` or ``'sum'``.

    Example:
        >>> reduce_loss(torch.tensor([1., 2., 3.]), 'mean')
        tensor(2.)
    """
    check_reduction(reduction, "reduce_loss")
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.numel() == 0:
        return loss.sum()
    return loss.mean()


def weight_reduce_loss(
    loss: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Multiply ``loss`` by ``weight`` and reduce it (v2 semantics).

    Args:
        loss: Element-wise loss.
        weight: Broadcastable element-wise weight.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: With ``'mean'``, divide the sum by ``avg_factor + eps`` (float32 machine
            epsilon, so that 0 is safe) instead of the element count. Not allowed with
            ``'sum'``.

    Example:
        >>> loss = torch.tensor([1., 2., 3.])
        >>> weight_reduce_loss(loss, torch.tensor([1., 0., 1.]), avg_factor=2.).item()
        2.0
    """
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    if reduction == "mean":
        eps = torch.finfo(torch.float32).eps
        return loss.sum() / (avg_factor + eps)
    if reduction == "none":
        return loss
    raise InvalidArgumentError(
        f"weight_reduce_loss: avg_factor can not be used with reduction={reduction!r}"
    )


def weighted_loss(loss_func: LossFunc) -> LossFunc:
    """Give an element-wise loss ``f(pred, target, **kwargs)`` the v2 weighting arguments.

    The decorated function is called as ``f(pred, target, weight=None, reduction='mean',
    avg_factor=None, **kwargs)``.

    Example:
        >>> @weighted_loss
        ... def l2(pred, target):
        ...     return (pred - target) ** 2
        >>> pred, target = torch.tensor([0., 2., 3.]), torch.tensor([1., 1., 1.])
        >>> l2(pred, target).item(), l2(pred, target, reduction='sum').item()
        (2.0, 6.0)
        >>> l2(pred, target, avg_factor=2).item()
        3.0
    """

    @functools.wraps(loss_func)
    def wrapper(
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        reduction: str = "mean",
        avg_factor: float | torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        loss = loss_func(pred, target, **kwargs)
        return weight_reduce_loss(loss, weight, reduction, avg_factor)

    return wrapper
