"""``SeesawLoss`` for long-tailed classification (Wang et al., CVPR 2021), as in v2.

The classifier predicts ``num_classes + 2`` logits: the classes, then an objectness pair
(foreground, background). The loss has two terms:

- ``loss_cls_objectness``: softmax cross-entropy of the objectness pair (target 0 for a
  foreground RoI, 1 for background), over every RoI;
- ``loss_cls_classes``: over foreground RoIs only, softmax cross-entropy of the class logits
  in which every other class ``j`` of a sample with label ``i`` has its logit shifted by
  ``log(S_ij)``, ``S_ij = M_ij * C_ij``:

  - mitigation ``M_ij = (N_j / N_i) ** p`` when ``N_j < N_i`` (else 1), ``N`` the number of
    samples of each class seen so far (``cum_samples``, a buffer accumulated by every call,
    each count at least 1 in the ratio): rare classes are pushed down less by frequent ones;
  - compensation ``C_ij = (s_j / max(s_i, eps)) ** q`` when ``s_j > s_i`` (else 1), ``s`` the
    detached softmax of the class logits: wrongly confident classes are penalised more.

Both terms are weighted by the label weights, reduced with ``avg_factor`` and multiplied by
``loss_weight``. Scores at test time (``get_activation``): class softmax times the
foreground probability, then the background probability as the last column.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.losses.accuracy import accuracy
from detforge.models.losses.cross_entropy_loss import cross_entropy
from detforge.models.losses.utils import check_reduction, select_reduction, weight_reduce_loss
from detforge.registry import MODELS

__all__ = ["SeesawLoss", "seesaw_ce_loss"]


def seesaw_ce_loss(
    cls_score: torch.Tensor,
    labels: torch.Tensor,
    label_weights: torch.Tensor | None,
    cum_samples: torch.Tensor,
    num_classes: int,
    p: float,
    q: float,
    eps: float,
    reduction: str = "mean",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """Seesaw cross-entropy of class logits (see the module docstring).

    Args:
        cls_score: ``Tensor[N, C]`` class logits (no objectness columns).
        labels: ``Tensor[N]`` in ``[0, C)``.
        label_weights: ``Tensor[N]`` sample weights.
        cum_samples: ``Tensor[C]`` samples seen per class.
        num_classes: ``C``.
        p: Mitigation exponent (0 disables it).
        q: Compensation exponent (0 disables it).
        eps: Smallest divisor of the compensation ratio.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Divisor of the sum for ``'mean'``.

    Raises:
        ValueError: the shapes do not match ``num_classes``.

    Example:
        >>> seesaw_ce_loss(torch.zeros(2, 3), torch.tensor([0, 2]), None, torch.ones(3), 3,
        ...                p=0.8, q=2.0, eps=1e-2)
        tensor(1.0986)
    """
    if cls_score.size(-1) != num_classes or len(cum_samples) != num_classes:
        raise ValueError(
            f"seesaw_ce_loss: {cls_score.size(-1)} logits and {len(cum_samples)} class counts "
            f"for num_classes={num_classes}"
        )
    onehot = F.one_hot(labels, num_classes)
    weights = cls_score.new_ones(onehot.size())
    if p > 0:
        counts = cum_samples.clamp(min=1)
        ratio = counts[None, :] / counts[:, None]  # [i, j] = N_j / N_i
        mitigation = torch.where(ratio < 1.0, ratio.pow(p), torch.ones_like(ratio))
        weights = weights * mitigation[labels.long(), :]
    if q > 0:
        scores = F.softmax(cls_score.detach(), dim=1)
        self_scores = scores[torch.arange(len(scores), device=scores.device), labels.long()]
        ratio = scores / self_scores[:, None].clamp(min=eps)
        compensation = torch.where(ratio > 1.0, ratio.pow(q), torch.ones_like(ratio))
        weights = weights * compensation
    cls_score = cls_score + weights.log() * (1 - onehot)
    loss = F.cross_entropy(cls_score, labels, reduction="none")
    if label_weights is not None:
        label_weights = label_weights.float()
    return weight_reduce_loss(
        loss, weight=label_weights, reduction=reduction, avg_factor=avg_factor
    )


@MODELS.register_module()
class SeesawLoss(nn.Module):
    """Seesaw loss with an objectness branch (see the module docstring).

    Args:
        use_sigmoid: Must be False (softmax only).
        p: Mitigation exponent.
        q: Compensation exponent.
        num_classes: Foreground classes (LVIS v1: 1203).
        eps: Smallest divisor of the compensation ratio.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of both terms.
        return_dict: Return ``loss_cls_objectness``/``loss_cls_classes`` separately (else
            their sum).

    Raises:
        ValueError: ``use_sigmoid`` is True, or the scores are not ``num_classes + 2`` wide.

    Example:
        >>> loss = SeesawLoss(num_classes=3)
        >>> out = loss(torch.zeros(2, 5), torch.tensor([0, 3]))
        >>> sorted(out), loss.cum_samples.tolist()
        (['loss_cls_classes', 'loss_cls_objectness'], [1.0, 0.0, 0.0, 1.0])
    """

    #: the box head sizes its classifier by :meth:`get_cls_channels`
    custom_cls_channels = True
    #: the box head scores through :meth:`get_activation`
    custom_activation = True
    #: the box head reports :meth:`get_accuracy`
    custom_accuracy = True

    def __init__(
        self,
        use_sigmoid: bool = False,
        p: float = 0.8,
        q: float = 2.0,
        num_classes: int = 1203,
        eps: float = 1e-2,
        reduction: str = "mean",
        loss_weight: float = 1.0,
        return_dict: bool = True,
    ) -> None:
        super().__init__()
        if use_sigmoid:
            raise ValueError("SeesawLoss: use_sigmoid=True is not supported (softmax only)")
        check_reduction(reduction, "SeesawLoss")
        self.use_sigmoid = False
        self.p = p
        self.q = q
        self.num_classes = num_classes
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.return_dict = return_dict
        self.cum_samples: torch.Tensor
        self.register_buffer("cum_samples", torch.zeros(num_classes + 1, dtype=torch.float))

    def _split(self, cls_score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if cls_score.size(-1) != self.num_classes + 2:
            raise ValueError(
                f"SeesawLoss: scores have {cls_score.size(-1)} columns, expected num_classes + "
                f"2 = {self.num_classes + 2}"
            )
        return cls_score[..., :-2], cls_score[..., -2:]

    def get_cls_channels(self, num_classes: int) -> int:
        """``num_classes + 2``: the classes and the objectness pair.

        Raises:
            ValueError: the head's ``num_classes`` is not the loss's.
        """
        if num_classes != self.num_classes:
            raise ValueError(
                f"SeesawLoss: num_classes={self.num_classes} but the box head has {num_classes}"
            )
        return num_classes + 2

    def get_activation(self, cls_score: torch.Tensor) -> torch.Tensor:
        """``Tensor[N, C + 1]``: class probabilities times P(object), then P(background)."""
        classes, objectness = self._split(cls_score)
        score_classes = F.softmax(classes, dim=-1)
        score_objectness = F.softmax(objectness, dim=-1)
        return torch.cat(
            [score_classes * score_objectness[..., [0]], score_objectness[..., [1]]], dim=-1
        )

    def get_accuracy(
        self, cls_score: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``acc_objectness`` over all RoIs and ``acc_classes`` over the foreground ones."""
        classes, objectness = self._split(cls_score)
        pos = labels < self.num_classes
        obj_labels = (labels == self.num_classes).long()
        return dict(
            acc_objectness=accuracy(objectness, obj_labels),
            acc_classes=accuracy(classes[pos], labels[pos]),
        )

    def forward(
        self,
        cls_score: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        """The two terms (see the class docstring); counts ``labels`` into ``cum_samples``."""
        reduction = select_reduction(self.reduction, reduction_override, "SeesawLoss")
        classes, objectness = self._split(cls_score)
        pos = labels < self.num_classes
        obj_labels = (labels == self.num_classes).long()
        unique, counts = labels.unique(return_counts=True)
        self.cum_samples[unique] += counts.to(self.cum_samples.dtype)
        if label_weights is None:
            label_weights = labels.new_ones(labels.size(), dtype=torch.float)
        else:
            label_weights = label_weights.float()
        if pos.sum() > 0:
            loss_classes = self.loss_weight * seesaw_ce_loss(
                classes[pos],
                labels[pos],
                label_weights[pos],
                self.cum_samples[: self.num_classes],
                self.num_classes,
                self.p,
                self.q,
                self.eps,
                reduction,
                avg_factor,
            )
        else:
            loss_classes = classes[pos].sum()
        loss_objectness = self.loss_weight * cross_entropy(
            objectness, obj_labels, label_weights, reduction, avg_factor
        )
        if self.return_dict:
            return dict(loss_cls_objectness=loss_objectness, loss_cls_classes=loss_classes)
        return loss_classes + loss_objectness
