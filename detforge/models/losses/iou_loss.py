"""IoU-based box losses (IoU, Bounded IoU, GIoU, DIoU, CIoU), as in MMDetection v2.

Boxes are ``x1, y1, x2, y2``; each loss compares row ``i`` of ``pred`` with row ``i`` of
``target`` and gives one value per box. A per-coordinate weight ``[N, 4]`` is averaged to
``[N]``; an all-zero weight short-cuts to a zero loss that keeps the graph.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.losses.utils import check_reduction, select_reduction, weighted_loss
from detforge.registry import MODELS
from detforge.structures.bbox import bbox_overlaps

__all__ = [
    "BoundedIoULoss",
    "CIoULoss",
    "DIoULoss",
    "GIoULoss",
    "IoULoss",
    "bounded_iou_loss",
    "ciou_loss",
    "diou_loss",
    "giou_loss",
    "iou_loss",
]

AvgFactor = float | torch.Tensor | None
_IOU_MODES = ("linear", "square", "log")


def _no_boxes(pred: torch.Tensor) -> torch.Tensor:
    """An empty per-box loss that is still connected to ``pred``."""
    return pred.sum(dim=-1) * 0


@weighted_loss
def iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    linear: bool = False,
    mode: str = "log",
    eps: float = 1e-6,
) -> torch.Tensor:
    """Per-box IoU loss: ``1 - iou`` (linear), ``1 - iou²`` (square) or ``-log(iou)`` (log).

    Example:
        >>> iou_loss(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[0., 0., 10., 20.]]),
        ...          mode='linear')
        tensor(0.5000)
    """
    if mode not in _IOU_MODES:
        raise InvalidArgumentError(f"iou_loss: mode must be one of {_IOU_MODES}, got {mode!r}")
    if linear:
        mode = "linear"
    if pred.numel() == 0:
        return _no_boxes(pred)
    ious = bbox_overlaps(pred, target, is_aligned=True).clamp(min=eps)
    if mode == "linear":
        return 1 - ious
    if mode == "square":
        return 1 - ious**2
    return -ious.log()


@weighted_loss
def bounded_iou_loss(
    pred: torch.Tensor, target: torch.Tensor, beta: float = 0.2, eps: float = 1e-3
) -> torch.Tensor:
    """Bounded IoU loss (Tychsen-Smith & Petersson 2018), ``[N, 4]`` per coordinate.

    Example:
        >>> bounded_iou_loss(torch.tensor([[0., 0., 10., 10.]]),
        ...                  torch.tensor([[5., 0., 15., 10.]]), reduction='none').round(decimals=4)
        tensor([[0.9000, 0.0000, 0.0000, 0.0000]])
    """
    pred_ctrx = (pred[:, 0] + pred[:, 2]) * 0.5
    pred_ctry = (pred[:, 1] + pred[:, 3]) * 0.5
    pred_w = pred[:, 2] - pred[:, 0]
    pred_h = pred[:, 3] - pred[:, 1]
    with torch.no_grad():
        target_ctrx = (target[:, 0] + target[:, 2]) * 0.5
        target_ctry = (target[:, 1] + target[:, 3]) * 0.5
        target_w = target[:, 2] - target[:, 0]
        target_h = target[:, 3] - target[:, 1]
    dx = target_ctrx - pred_ctrx
    dy = target_ctry - pred_ctry
    zeros = torch.zeros_like(dx)
    loss_dx = 1 - torch.max((target_w - 2 * dx.abs()) / (target_w + 2 * dx.abs() + eps), zeros)
    loss_dy = 1 - torch.max((target_h - 2 * dy.abs()) / (target_h + 2 * dy.abs() + eps), zeros)
    loss_dw = 1 - torch.min(target_w / (pred_w + eps), pred_w / (target_w + eps))
    loss_dh = 1 - torch.min(target_h / (pred_h + eps), pred_h / (target_h + eps))
    loss_comb = torch.stack([loss_dx, loss_dy, loss_dw, loss_dh], dim=-1).flatten(1)
    return torch.where(loss_comb < beta, 0.5 * loss_comb * loss_comb / beta, loss_comb - 0.5 * beta)


@weighted_loss
def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per-box ``1 - GIoU`` (Rezatofighi et al. 2019).

    Example:
        >>> giou_loss(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[20., 0., 30., 10.]]))
        tensor(1.3333)
    """
    if pred.numel() == 0:
        return _no_boxes(pred)
    return 1 - bbox_overlaps(pred, target, mode="giou", is_aligned=True, eps=eps)


def _iou_and_center_terms(
    pred: torch.Tensor, target: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IoU, squared centre distance and squared enclosing diagonal (+ eps) of aligned boxes."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    ap = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    ag = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    ious = overlap / (ap + ag - overlap + eps)
    enclose_wh = (
        torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])
    ).clamp(min=0)
    c2 = enclose_wh[:, 0] ** 2 + enclose_wh[:, 1] ** 2 + eps
    left = ((target[:, 0] + target[:, 2]) - (pred[:, 0] + pred[:, 2])) ** 2 / 4
    right = ((target[:, 1] + target[:, 3]) - (pred[:, 1] + pred[:, 3])) ** 2 / 4
    return ious, left + right, c2


@weighted_loss
def diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per-box ``1 - DIoU`` (Zheng et al. 2020): IoU minus normalised centre distance.

    Example:
        >>> diou_loss(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[20., 0., 30., 10.]]))
        tensor(1.4000)
    """
    ious, rho2, c2 = _iou_and_center_terms(pred, target, eps)
    return 1 - (ious - rho2 / c2)


@weighted_loss
def ciou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per-box ``1 - CIoU`` (Zheng et al. 2020): DIoU plus an aspect-ratio term.

    Example:
        >>> ciou_loss(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[20., 0., 30., 10.]]))
        tensor(1.4000)
    """
    ious, rho2, c2 = _iou_and_center_terms(pred, target, eps)
    w1, h1 = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1] + eps
    w2, h2 = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1] + eps
    v = (4 / math.pi**2) * torch.pow(torch.atan(w2 / h2) - torch.atan(w1 / h1), 2)
    with torch.no_grad():
        alpha = (ious > 0.5).float() * v / (1 - ious + v)
    cious = ious - (rho2 / c2 + alpha * v)
    return 1 - cious.clamp(min=-1.0, max=1.0)


def _zero_weight_loss(pred: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The zero loss v2 returns when no weight is positive (keeps ``pred`` in the graph)."""
    if pred.dim() == weight.dim() + 1:
        weight = weight.unsqueeze(1)
    return (pred * weight).sum()


def _per_box_weight(
    weight: torch.Tensor | None, pred: torch.Tensor, owner: str
) -> torch.Tensor | None:
    """Average a per-coordinate weight ``[N, 4]`` to a per-box weight ``[N]``."""
    if weight is None or weight.dim() <= 1:
        return weight
    if weight.shape != pred.shape:
        raise InvalidArgumentError(
            f"{owner}: weight of shape {tuple(weight.shape)} must be [N] or match pred "
            f"{tuple(pred.shape)}"
        )
    return weight.mean(-1)


@MODELS.register_module()
class IoULoss(nn.Module):
    """IoU loss (UnitBox, Yu et al. 2016).

    Args:
        linear: Deprecated; ``True`` means ``mode='linear'``.
        eps: Lower bound of the IoU.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.
        mode: ``'linear'`` (``1 - iou``), ``'square'`` (``1 - iou²``) or ``'log'``
            (``-log(iou)``).

    Example:
        >>> IoULoss(mode='linear')(torch.tensor([[0., 0., 10., 10.]]),
        ...                        torch.tensor([[0., 0., 10., 20.]]))
        tensor(0.5000)
    """

    def __init__(
        self,
        linear: bool = False,
        eps: float = 1e-6,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        mode: str = "log",
    ) -> None:
        super().__init__()
        if mode not in _IOU_MODES:
            raise InvalidArgumentError(f"IoULoss: mode must be one of {_IOU_MODES}, got {mode!r}")
        if linear:
            warnings.warn(
                "IoULoss: linear=True is deprecated, use mode='linear'",
                DeprecationWarning,
                stacklevel=2,
            )
            mode = "linear"
        self.mode = mode
        self.linear = linear
        self.eps = eps
        self.reduction = check_reduction(reduction, "IoULoss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of boxes ``pred`` ``[N, 4]`` against ``target`` ``[N, 4]``."""
        reduction = select_reduction(self.reduction, reduction_override, "IoULoss")
        if weight is not None and not torch.any(weight > 0) and reduction != "none":
            return _zero_weight_loss(pred, weight)
        weight = _per_box_weight(weight, pred, "IoULoss")
        return self.loss_weight * iou_loss(
            pred,
            target,
            weight,
            mode=self.mode,
            eps=self.eps,
            reduction=reduction,
            avg_factor=avg_factor,
        )


@MODELS.register_module()
class BoundedIoULoss(nn.Module):
    """Bounded IoU loss.

    Args:
        beta: Smooth-L1 threshold applied to each coordinate term.
        eps: Stabiliser of the ratios.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> box = torch.tensor([[0., 0., 10., 10.]])
        >>> BoundedIoULoss()(box, box).item() < 1e-7
        True
    """

    def __init__(
        self,
        beta: float = 0.2,
        eps: float = 1e-3,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.beta = beta
        self.eps = eps
        self.reduction = check_reduction(reduction, "BoundedIoULoss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of boxes ``pred`` ``[N, 4]`` against ``target`` ``[N, 4]``."""
        if weight is not None and not torch.any(weight > 0):
            return _zero_weight_loss(pred, weight)
        reduction = select_reduction(self.reduction, reduction_override, "BoundedIoULoss")
        return self.loss_weight * bounded_iou_loss(
            pred,
            target,
            weight,
            beta=self.beta,
            eps=self.eps,
            reduction=reduction,
            avg_factor=avg_factor,
        )


class _CenteredIoULoss(nn.Module):
    """Constructor and forward shared by GIoU, DIoU and CIoU; subclasses set ``element_loss``."""

    element_loss: Callable[..., torch.Tensor]

    def __init__(
        self, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.eps = eps
        self.reduction = check_reduction(reduction, type(self).__name__)
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of boxes ``pred`` ``[N, 4]`` against ``target`` ``[N, 4]``."""
        name = type(self).__name__
        if weight is not None and not torch.any(weight > 0):
            return _zero_weight_loss(pred, weight)
        reduction = select_reduction(self.reduction, reduction_override, name)
        weight = _per_box_weight(weight, pred, name)
        return self.loss_weight * type(self).element_loss(
            pred, target, weight, eps=self.eps, reduction=reduction, avg_factor=avg_factor
        )


@MODELS.register_module()
class GIoULoss(_CenteredIoULoss):
    """Generalised IoU loss, ``1 - GIoU``.

    Args:
        eps: Lower bound of the union and enclosing areas.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> GIoULoss()(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[20., 0., 30., 10.]]))
        tensor(1.3333)
    """

    element_loss = staticmethod(giou_loss)


@MODELS.register_module()
class DIoULoss(_CenteredIoULoss):
    """Distance IoU loss, ``1 - IoU + centre distance² / enclosing diagonal²``.

    Args:
        eps: Stabiliser of the union and the diagonal.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> DIoULoss()(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[20., 0., 30., 10.]]))
        tensor(1.4000)
    """

    element_loss = staticmethod(diou_loss)


@MODELS.register_module()
class CIoULoss(_CenteredIoULoss):
    """Complete IoU loss: DIoU plus an aspect-ratio consistency term.

    Args:
        eps: Stabiliser of the union, the diagonal and the heights.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> CIoULoss()(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[20., 0., 30., 10.]]))
        tensor(1.4000)
    """

    element_loss = staticmethod(ciou_loss)
