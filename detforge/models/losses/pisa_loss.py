"""PISA's re-weighting of a detector's losses (Cao et al., "Prime Sample Attention in Object
Detection", CVPR 2020), as in MMDetection v2's ``pisa_loss``.

:func:`isr_p` (importance-based sample reweighting of the positives) replaces the positives'
classification weights by their IoU hierarchical local rank (IoU-HLR):

1. decode each positive's predicted and target deltas on its prior and take their IoU;
2. per class, per ground truth (its index offset per image by the previous image's largest
   index + 1, as v2 does), add ``max_l_num - rank`` to the IoUs, ``rank`` the 0-based
   descending-IoU rank inside the ground truth and ``max_l_num`` the largest positive count of
   any class: ranks inside a ground truth now dominate;
3. per class, rank these values again (descending) and scale the weight by
   ``(max_l_num - rank) / max_l_num``;
4. ``w = (bias + w * (1 - bias)) ** k``, then all positive weights are multiplied by
   ``sum(loss * old_w) / sum(loss * w)`` (unreduced classification losses of the positives), so
   the positives' classification loss keeps its value.

:func:`carl_loss` (classification-aware regression loss) weights each positive's unreduced
regression loss by ``(bias + (1 - bias) * p) ** k``, ``p`` its score for its class (softmax,
or sigmoid), normalised to sum to the number of positives, and divides by ``avg_factor``
(default: the number of rows of ``bbox_targets``). The gradient flows through ``p``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from detforge.structures.bbox import bbox_overlaps

__all__ = ["carl_loss", "isr_p"]

Targets = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _pos_deltas(bbox_pred: torch.Tensor, inds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The deltas of rows ``inds``, those of class ``labels`` when boxes are per class."""
    if bbox_pred.size(-1) > 4:
        return bbox_pred.view(bbox_pred.size(0), -1, 4)[inds, labels].view(-1, 4)
    return bbox_pred[inds].view(-1, 4)


def isr_p(
    cls_score: torch.Tensor,
    bbox_pred: torch.Tensor,
    bbox_targets: Targets,
    rois: torch.Tensor,
    sampling_results: Sequence[Any],
    loss_cls: Callable[..., torch.Tensor],
    bbox_coder: Any,
    k: float = 2,
    bias: float = 0,
    num_class: int = 80,
) -> Targets:
    """ISR-P: the targets with the positives' label weights re-weighted (module docstring).

    Args:
        cls_score: ``Tensor[N, C(+1)]`` classification logits (detached here).
        bbox_pred: ``Tensor[N, 4]`` or ``[N, C * 4]`` deltas.
        bbox_targets: ``(labels, label_weights, bbox_targets, bbox_weights)``; ``label_weights``
            is changed in place.
        rois: ``Tensor[N, 5]`` RoIs (two-stage) or ``[N, 4]`` anchors (one-stage).
        sampling_results: Per image, with ``pos_assigned_gt_inds`` in the order of the
            positives of ``labels``.
        loss_cls: The head's classification loss (called with ``reduction_override='none'``).
        bbox_coder: The head's box coder.
        k: Power of the mapping.
        bias: Shift of the mapping.
        num_class: Foreground classes (labels ``>= num_class`` are background).

    Returns:
        The targets, ``label_weights`` re-weighted (unchanged without positives).
    """
    labels, label_weights, box_targets, bbox_weights = bbox_targets
    pos_inds = ((labels >= 0) & (labels < num_class)).nonzero().reshape(-1)
    pos_labels = labels[pos_inds]
    if pos_inds.numel() == 0:
        return labels, label_weights, box_targets, bbox_weights
    gts = []
    last_max_gt: int | torch.Tensor = 0
    for res in sampling_results:
        gt_i = res.pos_assigned_gt_inds
        gts.append(gt_i + last_max_gt)
        if len(gt_i) != 0:
            last_max_gt = gt_i.max() + 1
    all_gts = torch.cat(gts)
    if len(all_gts) != len(pos_inds):
        raise ValueError(
            f"isr_p: {len(all_gts)} positives in the sampling results but {len(pos_inds)} "
            "positive labels"
        )
    cls_score = cls_score.detach()
    bbox_pred = bbox_pred.detach()
    pos_rois = rois[pos_inds][:, 1:] if rois.size(-1) == 5 else rois[pos_inds]
    pos_delta_pred = _pos_deltas(bbox_pred, pos_inds, pos_labels)
    pos_delta_target = box_targets[pos_inds].view(-1, 4)
    ious = bbox_overlaps(
        bbox_coder.decode(pos_rois, pos_delta_pred),
        bbox_coder.decode(pos_rois, pos_delta_target),
        is_aligned=True,
    )
    weights = label_weights[pos_inds]
    max_l_num = pos_labels.bincount().max()
    for label in pos_labels.unique():
        l_inds = (pos_labels == label).nonzero().view(-1)
        l_gts = all_gts[l_inds]
        for t in l_gts.unique():
            t_inds = l_inds[l_gts == t]
            t_rank = ious[t_inds].sort(descending=True).indices.sort().indices
            ious[t_inds] += max_l_num - t_rank.float()
        l_rank = ious[l_inds].sort(descending=True).indices.sort().indices
        weights[l_inds] *= (max_l_num - l_rank.float()) / max_l_num
    weights = (bias + weights * (1 - bias)).pow(k)
    pos_loss = loss_cls(cls_score[pos_inds], pos_labels, reduction_override="none")
    old = label_weights[pos_inds]
    if pos_loss.dim() > 1:
        ratio = (pos_loss * old[:, None]).sum() / (pos_loss * weights[:, None]).sum()
    else:
        ratio = (pos_loss * old).sum() / (pos_loss * weights).sum()
    label_weights[pos_inds] = weights * ratio
    return labels, label_weights, box_targets, bbox_weights


def carl_loss(
    cls_score: torch.Tensor,
    labels: torch.Tensor,
    bbox_pred: torch.Tensor,
    bbox_targets: torch.Tensor,
    loss_bbox: Callable[..., torch.Tensor],
    k: float = 1,
    bias: float = 0.2,
    avg_factor: float | None = None,
    sigmoid: bool = False,
    num_class: int = 80,
) -> dict[str, torch.Tensor]:
    """CARL: ``{'loss_carl': Tensor[1]}`` (module docstring); zero without positives.

    Args:
        cls_score: ``Tensor[N, C(+1)]`` classification logits.
        labels: ``Tensor[N]`` labels (``>= num_class`` is background).
        bbox_pred: ``Tensor[N, 4]`` or ``[N, C * 4]`` deltas.
        bbox_targets: ``Tensor[N, 4]`` regression targets.
        loss_bbox: The head's regression loss (called with ``reduction_override='none'``).
        k: Power of the mapping.
        bias: Shift of the mapping.
        avg_factor: Divisor of the loss (default ``len(bbox_targets)``).
        sigmoid: Scores are sigmoids instead of a softmax.
        num_class: Foreground classes.
    """
    pos_inds = ((labels >= 0) & (labels < num_class)).nonzero().reshape(-1)
    if pos_inds.numel() == 0:
        return dict(loss_carl=cls_score.sum()[None] * 0.0)
    pos_labels = labels[pos_inds]
    probs = cls_score.sigmoid() if sigmoid else cls_score.softmax(-1)
    weights = (bias + (1 - bias) * probs[pos_inds, pos_labels]).pow(k)
    weights = weights * (float(pos_inds.numel()) / weights.sum())
    if avg_factor is None:
        avg_factor = bbox_targets.size(0)
    pos_preds = _pos_deltas(bbox_pred, pos_inds, pos_labels)
    reg = loss_bbox(pos_preds, bbox_targets[pos_inds], reduction_override="none") / avg_factor
    return dict(loss_carl=(reg * weights[:, None]).sum()[None])
