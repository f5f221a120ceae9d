"""Top-k classification accuracy in percent (the ``acc`` entry of v2's R-CNN losses)."""

from __future__ import annotations

from typing import overload

import torch
from torch import nn

from detforge.errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["Accuracy", "accuracy"]


@overload
def accuracy(
    pred: torch.Tensor, target: torch.Tensor, topk: int = 1, thresh: float | None = None
) -> torch.Tensor: ...
@overload
def accuracy(
    pred: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...], thresh: float | None = None
) -> list[torch.Tensor]: ...
def accuracy(
    pred: torch.Tensor,
    target: torch.Tensor,
    topk: int | tuple[int, ...] = 1,
    thresh: float | None = None,
) -> torch.Tensor | list[torch.Tensor]:
    """Percentage of samples whose target is among the ``k`` highest predictions.

    Args:
        pred: ``Tensor[N, C]`` scores.
        target: ``Tensor[N]`` class indices.
        topk: ``k``, or a tuple of several ``k``.
        thresh: Only predictions scoring above this count as correct.

    Returns:
        ``Tensor[1]`` (a list of them for a tuple ``topk``); 0 when there are no samples.

    Example:
        >>> pred = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
        >>> accuracy(pred, torch.tensor([1, 1, 1]))
        tensor([66.6667])
        >>> accuracy(pred, torch.tensor([1, 1, 1]), topk=(1, 2))
        [tensor([66.6667]), tensor([100.])]
    """
    if not isinstance(topk, int | tuple):
        raise InvalidArgumentTypeError(
            f"accuracy: topk must be an int or a tuple of ints, got {topk!r}"
        )
    return_single = isinstance(topk, int)
    ks: tuple[int, ...] = (topk,) if isinstance(topk, int) else topk
    maxk = max(ks)
    if pred.size(0) == 0:
        empty = [pred.new_tensor(0.0) for _ in ks]
        return empty[0] if return_single else empty
    if pred.ndim != 2 or target.ndim != 1 or pred.size(0) != target.size(0):
        raise InvalidArgumentError(
            f"accuracy: expected pred [N, C] and target [N], got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if maxk > pred.size(1):
        raise InvalidArgumentError(f"accuracy: maxk {maxk} exceeds pred dimension {pred.size(1)}")
    pred_value, pred_label = pred.topk(maxk, dim=1)
    pred_label = pred_label.t()  # [maxk, N]
    correct = pred_label.eq(target.view(1, -1).expand_as(pred_label))
    if thresh is not None:
        correct = correct & (pred_value > thresh).t()
    res = [
        correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / pred.size(0)) for k in ks
    ]
    return res[0] if return_single else res


class Accuracy(nn.Module):
    """Module form of :func:`accuracy`.

    Example:
        >>> Accuracy(topk=1)(torch.tensor([[0.2, 0.8]]), torch.tensor([1]))
        tensor([100.])
    """

    def __init__(self, topk: int | tuple[int, ...] = (1,), thresh: float | None = None) -> None:
        super().__init__()
        self.topk = topk
        self.thresh = thresh

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor | list[torch.Tensor]:
        """The accuracies of ``pred`` ``[N, C]`` against ``target`` ``[N]``."""
        return accuracy(pred, target, self.topk, self.thresh)
