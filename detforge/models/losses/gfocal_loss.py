"""Generalized Focal Loss (Li et al. 2020): ``QualityFocalLoss`` and ``DistributionFocalLoss``.

Numerically MMDetection v2's ``mmdet/models/losses/gfocal_loss.py``:

- QFL scores every (prior, class) pair against a soft target ``t`` in ``[0, 1]``: the target
  is the IoU of the predicted box for the prior's ground-truth class and 0 everywhere else.
  With ``p = sigmoid(x)`` the element loss is ``BCE(x, t) * |t - p| ** beta``; a prior's loss
  is the sum over its classes.
- DFL reads a box side as a distribution over the integers ``0..reg_max`` and pulls the
  probability mass onto the two integers that bracket the (real-valued) target distance,
  ``CE(y_l) * (y_r - y) + CE(y_r) * (y - y_l)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError, InvalidArgumentTypeError
from detforge.models.losses.utils import check_reduction, select_reduction, weight_reduce_loss
from detforge.registry import MODELS

__all__ = [
    "DistributionFocalLoss",
    "QualityFocalLoss",
    "distribution_focal_loss",
    "quality_focal_loss",
    "quality_focal_loss_tensor_target",
    "quality_focal_loss_with_prob",
]

AvgFactor = float | torch.Tensor | None
QflTarget = tuple[torch.Tensor, torch.Tensor] | list[torch.Tensor]


def _split_target(target: QflTarget, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(target, tuple | list) or len(target) != 2:
        raise InvalidArgumentTypeError(
            f"{owner}: target must be a pair (labels Tensor[N], scores Tensor[N]), "
            f"got {type(target).__name__}"
        )
    return target[0], target[1]


def _qfl_elements(
    pred: torch.Tensor, target: QflTarget, beta: float, activated: bool, owner: str
) -> torch.Tensor:
    """Per-prior QFL ``[N]`` for ``(labels, scores)`` targets; ``labels == C`` is background."""
    label, score = _split_target(target, owner)
    if pred.dim() != 2 or label.shape != pred.shape[:1] or score.shape != pred.shape[:1]:
        raise InvalidArgumentError(
            f"{owner}: pred must be [N, C] with labels and scores [N]; got "
            f"{tuple(pred.shape)}, {tuple(label.shape)}, {tuple(score.shape)}"
        )
    prob = pred if activated else pred.sigmoid()
    bce = F.binary_cross_entropy if activated else F.binary_cross_entropy_with_logits
    # every pair first counts as a negative (target 0) ...
    loss = bce(pred, prob.new_zeros(pred.shape), reduction="none") * prob.pow(beta)
    # ... then the ground-truth class of each positive prior is rescored against its IoU
    num_classes = pred.size(1)
    pos = ((label >= 0) & (label < num_classes)).nonzero().squeeze(1)
    pos_label = label[pos].long()
    modulator = score[pos] - prob[pos, pos_label]
    loss[pos, pos_label] = bce(
        pred[pos, pos_label], score[pos], reduction="none"
    ) * modulator.abs().pow(beta)
    return loss.sum(dim=1)


def quality_focal_loss(
    pred: torch.Tensor,
    target: QflTarget,
    weight: torch.Tensor | None = None,
    beta: float = 2.0,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """Quality focal loss of logits ``pred`` ``[N, C]``.

    Args:
        pred: ``Tensor[N, C]`` joint class/quality logits.
        target: ``(labels Tensor[N], scores Tensor[N])``; labels in ``[0, C]`` (``C`` is the
            background), scores are the IoU targets of the labelled class.
        weight: ``Tensor[N]`` per-prior weights.
        beta: Exponent of the modulating factor ``|score - p|``.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divide the sum by this for ``'mean'``.

    Example:
        >>> pred = torch.zeros(2, 3)
        >>> quality_focal_loss(pred, (torch.tensor([1, 3]), torch.tensor([0.5, 0.])),
        ...                    reduction='sum')
        tensor(0.8664)
    """
    loss = _qfl_elements(pred, target, beta, False, "quality_focal_loss")
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


def quality_focal_loss_with_prob(
    pred: torch.Tensor,
    target: QflTarget,
    weight: torch.Tensor | None = None,
    beta: float = 2.0,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """:func:`quality_focal_loss` for predictions that are already probabilities.

    Example:
        >>> pred = torch.full((2, 3), 0.5)
        >>> quality_focal_loss_with_prob(pred, (torch.tensor([1, 3]), torch.tensor([0.5, 0.])),
        ...                              reduction='sum')
        tensor(0.8664)
    """
    loss = _qfl_elements(pred, target, beta, True, "quality_focal_loss_with_prob")
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


def quality_focal_loss_tensor_target(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    beta: float = 2.0,
    activated: bool = False,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """QFL with a dense soft target ``[N, C]`` (one-hot labels times quality scores).

    Pairs whose target is non-zero are positives; the per-prior loss ``[N]`` sums the classes.

    Example:
        >>> target = torch.tensor([[0., 0.5, 0.], [0., 0., 0.]])
        >>> quality_focal_loss_tensor_target(torch.zeros(2, 3), target, reduction='sum')
        tensor(0.8664)
    """
    if pred.shape != target.shape:
        raise InvalidArgumentError(
            f"quality_focal_loss_tensor_target: pred {tuple(pred.shape)} and target "
            f"{tuple(target.shape)} must have the same shape"
        )
    prob = pred if activated else pred.sigmoid()
    bce = F.binary_cross_entropy if activated else F.binary_cross_entropy_with_logits
    target = target.type_as(pred)
    loss = bce(pred, prob.new_zeros(pred.shape), reduction="none") * prob.pow(beta)
    pos = target != 0
    modulator = target[pos] - prob[pos]
    loss[pos] = bce(pred[pos], target[pos], reduction="none") * modulator.abs().pow(beta)
    return weight_reduce_loss(loss.sum(dim=1), weight, reduction, avg_factor)


def distribution_focal_loss(
    pred: torch.Tensor,
    label: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: AvgFactor = None,
) -> torch.Tensor:
    """Distribution focal loss of one box side per row.

    Args:
        pred: ``Tensor[N, reg_max + 1]`` logits of the discretised distance.
        label: ``Tensor[N]`` target distances in ``[0, reg_max)`` (in units of the stride).
        weight: ``Tensor[N]`` weights.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divide the sum by this for ``'mean'``.

    Example:
        >>> pred = torch.tensor([[0., 0., 0.]])
        >>> distribution_focal_loss(pred, torch.tensor([0.5]))
        tensor(1.0986)
    """
    if pred.dim() != 2 or label.shape != pred.shape[:1]:
        raise InvalidArgumentError(
            f"distribution_focal_loss: pred must be [N, n] and label [N]; got "
            f"{tuple(pred.shape)} and {tuple(label.shape)}"
        )
    left = label.long()
    right = left + 1
    weight_left = right.float() - label
    weight_right = label - left.float()
    loss = (
        F.cross_entropy(pred, left, reduction="none") * weight_left
        + F.cross_entropy(pred, right, reduction="none") * weight_right
    )
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class QualityFocalLoss(nn.Module):
    """Quality Focal Loss (``mmdet.models.losses.QualityFocalLoss``).

    Args:
        use_sigmoid: Must be True (v2 has only the sigmoid form).
        beta: Exponent of the modulating factor.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.
        activated: The predictions are probabilities, not logits.

    Example:
        >>> qfl = QualityFocalLoss(beta=2.0)
        >>> target = (torch.tensor([1, 3]), torch.tensor([0.5, 0.]))
        >>> qfl(torch.zeros(2, 3), target, avg_factor=1.0)
        tensor(0.8664)
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        beta: float = 2.0,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        activated: bool = False,
    ) -> None:
        super().__init__()
        if use_sigmoid is not True:
            raise NotImplementedError("QualityFocalLoss: only use_sigmoid=True is supported")
        self.use_sigmoid = use_sigmoid
        self.beta = beta
        self.reduction = check_reduction(reduction, "QualityFocalLoss")
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(
        self,
        pred: torch.Tensor,
        target: QflTarget | torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss.

        Args:
            pred: ``Tensor[N, C]`` logits (probabilities with ``activated``).
            target: ``(labels Tensor[N], scores Tensor[N])`` or a dense ``Tensor[N, C]``
                soft target.
            weight: ``Tensor[N]`` per-prior weights.
            avg_factor: Divide the sum by this for ``'mean'``.
            reduction_override: Replace ``reduction`` for this call.
        """
        reduction = select_reduction(self.reduction, reduction_override, "QualityFocalLoss")
        if isinstance(target, torch.Tensor):
            loss = quality_focal_loss_tensor_target(
                pred, target, weight, self.beta, self.activated, reduction, avg_factor
            )
        elif self.activated:
            loss = quality_focal_loss_with_prob(
                pred, target, weight, self.beta, reduction, avg_factor
            )
        else:
            loss = quality_focal_loss(pred, target, weight, self.beta, reduction, avg_factor)
        return self.loss_weight * loss


@MODELS.register_module()
class DistributionFocalLoss(nn.Module):
    """Distribution Focal Loss (``mmdet.models.losses.DistributionFocalLoss``).

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.

    Example:
        >>> dfl = DistributionFocalLoss(loss_weight=0.25)
        >>> dfl(torch.zeros(1, 3), torch.tensor([0.5]))
        tensor(0.2747)
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, "DistributionFocalLoss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: AvgFactor = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        """The weighted loss of ``pred [N, reg_max + 1]`` against distances ``target [N]``."""
        reduction = select_reduction(self.reduction, reduction_override, "DistributionFocalLoss")
        return self.loss_weight * distribution_focal_loss(
            pred, target, weight, reduction, avg_factor
        )
