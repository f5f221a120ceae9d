"""``CrossEntropyLoss``: softmax, sigmoid (binary) and mask cross-entropy, as in MMDetection v2."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.losses.utils import check_reduction, select_reduction, weight_reduce_loss
from detforge.registry import MODELS

__all__ = ["CrossEntropyLoss", "binary_cross_entropy", "cross_entropy", "mask_cross_entropy"]

AvgFactor = float | torch.Tensor | None


def cross_entropy(
    pred: torch.Tensor,
    label: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
    class_weight: torch.Tensor | None = None,
    ignore_index: int | None = -100,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Softmax cross-entropy per sample, then v2 weighting and reduction.

    ``class_weight`` scales each sample's loss by its class's weight, and ``'mean'`` divides by
    the number of samples (not by the sum of the weights, unlike ``F.cross_entropy``).

    Args:
        pred: ``Tensor[N, C]`` logits.
        label: ``Tensor[N]`` class indices.
        weight: ``Tensor[N]`` per-sample weight.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divide the sum by this for ``'mean'``.
        class_weight: ``Tensor[C]``.
        ignore_index: Label whose samples get loss 0 (``None`` = -100).
        avg_non_ignore: With ``'mean'`` and no ``avg_factor``, average over non-ignored samples.

    Example:
        >>> cross_entropy(torch.tensor([[100., -100.]]), torch.tensor([1]),
        ...               class_weight=torch.tensor([0.8, 0.2]))
        tensor(40.)
    """
    ignore_index = -100 if ignore_index is None else ignore_index
    loss = F.cross_entropy(
        pred, label, weight=class_weight, reduction="none", ignore_index=ignore_index
    )
    if avg_factor is None and avg_non_ignore and reduction == "mean":
        avg_factor = label.numel() - (label == ignore_index).sum().item()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


def _expand_onehot_labels(
    labels: torch.Tensor,
    label_weights: torch.Tensor | None,
    label_channels: int,
    ignore_index: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-hot targets ``[N, C]`` for class indices (indices ``>= C`` are all-zero rows)."""
    bin_labels = labels.new_full((labels.size(0), label_channels), 0)
    valid_mask = (labels >= 0) & (labels != ignore_index)
    inds = torch.nonzero(valid_mask & (labels < label_channels), as_tuple=False).squeeze(1)
    if inds.numel() > 0:
        bin_labels[inds, labels[inds]] = 1
    valid = valid_mask.view(-1, 1).expand(labels.size(0), label_channels).float()
    if label_weights is None:
        bin_label_weights = valid
    else:
        bin_label_weights = label_weights.view(-1, 1).repeat(1, label_channels) * valid
    return bin_labels, bin_label_weights, valid


def binary_cross_entropy(
    pred: torch.Tensor,
    label: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
    class_weight: torch.Tensor | None = None,
    ignore_index: int | None = -100,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Sigmoid (binary) cross-entropy with logits, then v2 weighting and reduction.

    Class-index labels ``[N]`` for ``pred`` ``[N, C]`` are expanded to one-hot targets (an
    index ``>= C``, the background, gives an all-zero row); ignored labels get weight 0.

    Args:
        pred: ``Tensor[N, C]`` (or any shape matching ``label``) logits.
        label: ``Tensor[N]`` class indices, or targets shaped like ``pred``.
        weight: Per-sample ``[N]`` or element-wise weight.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divide the sum by this for ``'mean'``.
        class_weight: ``Tensor[C]`` used as ``pos_weight`` of the positives.
        ignore_index: Label to ignore (``None`` = -100).
        avg_non_ignore: With ``'mean'`` and no ``avg_factor``, average over non-ignored elements.

    Example:
        >>> binary_cross_entropy(torch.tensor([[0.], [0.]]), torch.tensor([0, 1]))
        tensor(0.6931)
    """
    ignore_index = -100 if ignore_index is None else ignore_index
    if pred.dim() != label.dim():
        label, weight, valid_mask = _expand_onehot_labels(
            label, weight, pred.size(-1), ignore_index
        )
    else:
        valid_mask = ((label >= 0) & (label != ignore_index)).float()
        weight = valid_mask if weight is None else weight * valid_mask
    if avg_factor is None and avg_non_ignore and reduction == "mean":
        avg_factor = valid_mask.sum().item()
    loss = F.binary_cross_entropy_with_logits(
        pred, label.float(), pos_weight=class_weight, reduction="none"
    )
    return weight_reduce_loss(loss, weight.float(), reduction=reduction, avg_factor=avg_factor)


def mask_cross_entropy(
    pred: torch.Tensor,
    target: torch.Tensor,
    label: torch.Tensor,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
    class_weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Binary cross-entropy of each RoI's mask for its own class (Mask R-CNN).

    Args:
        pred: ``Tensor[N, C, H, W]`` mask logits.
        target: ``Tensor[N, H, W]`` binary targets.
        label: ``Tensor[N]`` class of each RoI (selects the channel).
        reduction: Only ``'mean'``.
        avg_factor: Only ``None``.
        class_weight: Element weight passed to the BCE.
        ignore_index: Only ``None``.
        avg_non_ignore: Unused (the mask loss ignores nothing).

    Returns:
        ``Tensor[1]``, the mean over all mask pixels.
    """
    if ignore_index is not None:
        raise InvalidArgumentError("mask_cross_entropy: ignore_index is not supported")
    if reduction != "mean" or avg_factor is not None:
        raise InvalidArgumentError(
            "mask_cross_entropy: only reduction='mean' without avg_factor is supported, got "
            f"reduction={reduction!r}, avg_factor={avg_factor!r}"
        )
    inds = torch.arange(0, pred.size(0), dtype=torch.long, device=pred.device)
    pred_slice = pred[inds, label].squeeze(1)
    return F.binary_cross_entropy_with_logits(
        pred_slice, target, weight=class_weight, reduction="mean"
    )[None]


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Cross-entropy loss (``mmdet.models.losses.CrossEntropyLoss``).

    Args:
        use_sigmoid: Per-class sigmoid (binary) cross-entropy instead of softmax.
        use_mask: Mask cross-entropy (the third forward argument is the RoI labels).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        class_weight: Per-class weights.
        ignore_index: Label to ignore.
        loss_weight: Multiplier of the loss.
        avg_non_ignore: Average over non-ignored samples only.

    Example:
        >>> loss = CrossEntropyLoss(class_weight=[0.8, 0.2])
        >>> loss(torch.tensor([[100., -100.]]), torch.tensor([1]))
        tensor(40.)
    """

    def __init__(
        self,
        use_sigmoid: bool = False,
        use_mask: bool = False,
        reduction: str = "mean",
        class_weight: Sequence[float] | None = None,
        ignore_index: int | None = None,
        loss_weight: float = 1.0,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__()
        if use_sigmoid and use_mask:
            raise InvalidArgumentError(
                "CrossEntropyLoss: use_sigmoid and use_mask cannot both be True"
            )
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
        self.reduction = check_reduction(reduction, "CrossEntropyLoss")
        self.loss_weight = loss_weight
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        if ignore_index is not None and not avg_non_ignore and reduction == "mean":
            warnings.warn(
                "CrossEntropyLoss: with ignore_index set and avg_non_ignore=False the mean "
                "runs over all samples, ignored ones included; set avg_non_ignore=True to "
                "average over the others like torch's cross_entropy",
                stacklevel=2,
            )
        self.cls_criterion: Callable[..., torch.Tensor]
        if use_sigmoid:
            self.cls_criterion = binary_cross_entropy
        elif use_mask:
            self.cls_criterion = mask_cross_entropy
        else:
            self.cls_criterion = cross_entropy

    def extra_repr(self) -> str:
        return f"avg_non_ignore={self.avg_non_ignore}"

    def forward(
        self,
        cls_score: torch.Tensor,
        label: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
        ignore_index: int | None = None,
    ) -> torch.Tensor:
        """The weighted loss.

        Args:
            cls_score: Logits (``[N, C]``; ``[N, C, H, W]`` with ``use_mask``).
            label: ``[N]`` class indices (mask targets ``[N, H, W]`` with ``use_mask``).
            weight: Sample weights (the RoI labels ``[N]`` with ``use_mask``).
            avg_factor: Divide the sum by this for ``'mean'``.
            reduction_override: Replace ``reduction`` for this call.
            ignore_index: Replace ``ignore_index`` for this call.
        """
        reduction = select_reduction(self.reduction, reduction_override, "CrossEntropyLoss")
        if ignore_index is None:
            ignore_index = self.ignore_index
        class_weight = (
            None if self.class_weight is None else cls_score.new_tensor(self.class_weight)
        )
        return self.loss_weight * self.cls_criterion(
            cls_score,
            label,
            weight,
            class_weight=class_weight,
            reduction=reduction,
            avg_factor=avg_factor,
            ignore_index=ignore_index,
            avg_non_ignore=self.avg_non_ignore,
        )
