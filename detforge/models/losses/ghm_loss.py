"""Gradient Harmonizing Mechanism losses GHM-C and GHM-R (Li et al. 2019), MMDetection v2's
numerics.

Each valid element's gradient norm ``g`` (GHM-C: ``|sigmoid(x) - y|``; GHM-R: ``|d| / sqrt(d^2 +
mu^2)`` of the error ``d``) falls into one of ``bins`` equal bins of ``[0, 1]`` (GHM-C's last
edge is ``1 + 1e-6``, GHM-R's ``1000``). An element in a bin holding ``n`` elements is weighted
``tot / n / k``: ``tot`` the number of valid elements (GHM-R: the sum of the weights), ``k`` the
number of non-empty bins. With ``momentum > 0`` the count ``n`` is an exponential moving
average kept in the ``acc_sum`` buffer (updated by every call, as in v2). The weighted element
losses (sigmoid BCE; the authentic smooth L1 ``sqrt(d^2 + mu^2) - mu``) are summed and divided by
``tot``. ``edges`` and ``acc_sum`` are buffers, so v2 checkpoints carry them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.losses.utils import check_reduction, select_reduction, weight_reduce_loss
from detforge.registry import MODELS

__all__ = ["GHMC", "GHMR", "harmonizing_weights"]


def harmonizing_weights(
    g: torch.Tensor,
    valid: torch.Tensor,
    edges: torch.Tensor,
    tot: float,
    acc_sum: torch.Tensor | None = None,
    momentum: float = 0.0,
) -> torch.Tensor:
    """GHM's per-element weights ``tot / n_bin / k`` (see the module docstring).

    Args:
        g: Gradient norms, any shape.
        valid: Bool mask of the elements that count, like ``g``.
        edges: ``Tensor[bins + 1]`` bin edges.
        tot: The normaliser ``tot``.
        acc_sum: ``Tensor[bins]`` moving-average counts, updated in place (with ``momentum``).
        momentum: Weight of the previous counts; 0 uses this call's counts.

    Example:
        >>> g = torch.tensor([0.05, 0.06, 0.95])
        >>> harmonizing_weights(g, g > 0, torch.tensor([0., 0.5, 1.0 + 1e-6]), 3.0).tolist()
        [0.75, 0.75, 1.5]
    """
    weights = torch.zeros_like(g)
    non_empty = 0
    for i in range(len(edges) - 1):
        inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
        num_in_bin = inds.sum().item()
        if num_in_bin > 0:
            if momentum > 0 and acc_sum is not None:
                acc_sum[i] = momentum * acc_sum[i] + (1 - momentum) * num_in_bin
                weights[inds] = tot / acc_sum[i]
            else:
                weights[inds] = tot / num_in_bin
            non_empty += 1
    return weights / non_empty if non_empty > 0 else weights


def _edges(bins: int, last: float | None) -> torch.Tensor:
    edges = torch.arange(bins + 1).float() / bins
    if last is None:
        edges[-1] += 1e-6
    else:
        edges[-1] = last
    return edges


@MODELS.register_module()
class GHMC(nn.Module):
    """GHM classification loss over sigmoid BCE (``mmdet.models.losses.GHMC``).

    Args:
        bins: Number of gradient-norm bins.
        momentum: Moving-average weight of the bin counts (0: none).
        use_sigmoid: Must be True (v2 has only the sigmoid form).
        loss_weight: Multiplier of the loss.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.

    Raises:
        NotImplementedError: ``use_sigmoid=False``.

    Example:
        >>> loss = GHMC(bins=10)
        >>> round(loss(torch.zeros(2, 2), torch.tensor([0, 2]), torch.ones(2)).item(), 4)
        0.6931
    """

    def __init__(
        self,
        bins: int = 10,
        momentum: float = 0,
        use_sigmoid: bool = True,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not use_sigmoid:
            raise NotImplementedError("GHMC: only the sigmoid form (use_sigmoid=True) exists")
        self.bins = bins
        self.momentum = momentum
        self.use_sigmoid = use_sigmoid
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, "GHMC")
        self.edges: torch.Tensor
        self.acc_sum: torch.Tensor | None
        self.register_buffer("edges", _edges(bins, None))
        if momentum > 0:
            self.register_buffer("acc_sum", torch.zeros(bins))
        else:
            self.acc_sum = None

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        label_weight: torch.Tensor,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The GHM-C loss of logits ``pred [N, C]``.

        Args:
            pred: ``Tensor[N, C]`` logits.
            target: ``Tensor[N]`` labels in ``[0, C]`` (``C`` = background) or ``[N, C]``
                binary targets.
            label_weight: ``Tensor[N]`` (with labels) or ``[N, C]``; > 0 marks valid elements.
            avg_factor: Ignored: the loss is normalised by the valid count (v2).
            reduction_override: Replace ``reduction`` for this call.
        """
        reduction = select_reduction(self.reduction, reduction_override, "GHMC")
        if pred.dim() != target.dim():
            channels = pred.size(-1)
            labels = target
            target = labels.new_zeros((labels.size(0), channels))
            fg = ((labels >= 0) & (labels < channels)).nonzero(as_tuple=False).view(-1)
            target[fg, labels[fg]] = 1
            label_weight = label_weight.view(-1, 1).expand(label_weight.size(0), channels)
        target, label_weight = target.float(), label_weight.float()
        g = torch.abs(pred.sigmoid().detach() - target)
        valid = label_weight > 0
        tot = max(valid.float().sum().item(), 1.0)
        weights = harmonizing_weights(g, valid, self.edges, tot, self.acc_sum, self.momentum)
        loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        loss = weight_reduce_loss(loss, weights, reduction=reduction, avg_factor=tot)
        return loss * self.loss_weight


@MODELS.register_module()
class GHMR(nn.Module):
    """GHM regression loss over the authentic smooth L1 (``mmdet.models.losses.GHMR``).

    Args:
        mu: The authentic smooth L1's ``mu``.
        bins: Number of gradient-norm bins.
        momentum: Moving-average weight of the bin counts (0: none).
        loss_weight: Multiplier of the loss.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.

    Example:
        >>> loss = GHMR(mu=0.02)
        >>> round(loss(torch.zeros(1, 4), torch.ones(1, 4), torch.ones(1, 4)).item(), 4)
        0.9802
    """

    def __init__(
        self,
        mu: float = 0.02,
        bins: int = 10,
        momentum: float = 0,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.mu = mu
        self.bins = bins
        self.momentum = momentum
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, "GHMR")
        self.edges: torch.Tensor
        self.acc_sum: torch.Tensor | None
        self.register_buffer("edges", _edges(bins, 1e3))
        if momentum > 0:
            self.register_buffer("acc_sum", torch.zeros(bins))
        else:
            self.acc_sum = None

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        label_weight: torch.Tensor,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The GHM-R loss of ``pred`` against ``target`` (both ``[N, 4 (* C)]``); elements
        with ``label_weight > 0`` count; ``avg_factor`` is ignored (v2)."""
        reduction = select_reduction(self.reduction, reduction_override, "GHMR")
        mu = self.mu
        diff = pred - target
        loss = torch.sqrt(diff * diff + mu * mu) - mu
        g = torch.abs(diff / torch.sqrt(mu * mu + diff * diff)).detach()
        valid = label_weight > 0
        tot = max(label_weight.float().sum().item(), 1.0)
        weights = harmonizing_weights(g, valid, self.edges, tot, self.acc_sum, self.momentum)
        loss = weight_reduce_loss(loss, weights, reduction=reduction, avg_factor=tot)
        return loss * self.loss_weight
