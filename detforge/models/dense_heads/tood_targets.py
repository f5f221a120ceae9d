"""Training targets of TOOD's task-aligned learning (v2's ``TOODHead.get_targets`` after
``initial_epoch``).

Per image, the anchors inside the image (``allowed_border``) are assigned by
:class:`TaskAlignedAssigner` from the head's own (detached) predictions: class probabilities
and decoded boxes in pixels. Positives get their ground truth's label (weight 1 or
``pos_weight``) and box; negatives the background label with weight 1. Each positive's
alignment metric ``t`` is normalised per ground truth, ``t / (max t + 1e-7) * max IoU`` over that
ground truth's positives: it is both the soft classification target (quality focal loss) and the
weight of the box loss. The targets are scattered back to all anchors and split by level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from detforge.models.utils import anchor_inside_flags, images_to_levels, multi_apply, unmap
from detforge.registry import Cfg
from detforge.structures import ImgMeta

__all__ = ["AlignedTargets", "task_aligned_targets"]


class AlignedTargets(NamedTuple):
    """The targets of a batch, each a per-level list of ``Tensor[B, n_l, ...]``."""

    anchors: list[torch.Tensor]
    labels: list[torch.Tensor]
    label_weights: list[torch.Tensor]
    #: ground-truth boxes ``x1, y1, x2, y2`` in pixels
    bbox_targets: list[torch.Tensor]
    #: the normalised alignment metrics (0 for negatives)
    alignment_metrics: list[torch.Tensor]


def _aligned_targets_single(
    cls_scores: torch.Tensor,
    bbox_preds: torch.Tensor,
    flat_anchors: torch.Tensor,
    valid_flags: torch.Tensor,
    gt_bboxes: torch.Tensor,
    gt_bboxes_ignore: torch.Tensor | None,
    gt_labels: torch.Tensor | None,
    img_meta: ImgMeta,
    *,
    assigner: Any,
    sampler: Any,
    num_classes: int,
    train_cfg: Cfg,
) -> tuple[Any, ...]:
    inside = anchor_inside_flags(
        flat_anchors, valid_flags, img_meta["img_shape"][:2], train_cfg["allowed_border"]
    )
    if not inside.any():
        return (None,) * 5
    anchors = flat_anchors[inside, :]
    assign_result = assigner.assign(
        cls_scores[inside, :],
        bbox_preds[inside, :],
        anchors,
        gt_bboxes,
        gt_bboxes_ignore,
        gt_labels,
        train_cfg["alpha"],
        train_cfg["beta"],
    )
    assign_ious = assign_result.max_overlaps
    assign_metrics = assign_result.get_extra_property("assign_metrics")
    sampling_result = sampler.sample(assign_result, anchors, gt_bboxes)

    num_valid = anchors.shape[0]
    bbox_targets = torch.zeros_like(anchors)
    labels = anchors.new_full((num_valid,), num_classes, dtype=torch.long)
    label_weights = anchors.new_zeros(num_valid, dtype=torch.float)
    norm_metrics = anchors.new_zeros(num_valid, dtype=torch.float)
    pos_inds = sampling_result.pos_inds
    neg_inds = sampling_result.neg_inds
    pos_gt = sampling_result.pos_assigned_gt_inds
    if len(pos_inds) > 0:
        bbox_targets[pos_inds, :] = sampling_result.pos_gt_bboxes
        labels[pos_inds] = 0 if gt_labels is None else gt_labels[pos_gt]
        pos_weight = train_cfg["pos_weight"]
        label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
    if len(neg_inds) > 0:
        label_weights[neg_inds] = 1.0
    for gt in torch.unique(pos_gt):
        inds = pos_inds[pos_gt == gt]
        metrics = assign_metrics[inds]
        norm_metrics[inds] = metrics / (metrics.max() + 10e-8) * assign_ious[inds].max()

    total = flat_anchors.size(0)
    return (
        unmap(anchors, total, inside),
        unmap(labels, total, inside, fill=num_classes),
        unmap(label_weights, total, inside),
        unmap(bbox_targets, total, inside),
        unmap(norm_metrics, total, inside),
    )


def task_aligned_targets(
    cls_scores: torch.Tensor,
    bbox_preds: torch.Tensor,
    anchor_list: Sequence[Sequence[torch.Tensor]],
    valid_flag_list: Sequence[Sequence[torch.Tensor]],
    gt_bboxes_list: Sequence[torch.Tensor],
    img_metas: Sequence[ImgMeta],
    *,
    assigner: Any,
    sampler: Any,
    num_classes: int,
    train_cfg: Cfg,
    gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
    gt_labels_list: Sequence[torch.Tensor | None] | None = None,
) -> AlignedTargets | None:
    """The task-aligned targets of a batch (see the module docstring).

    Args:
        cls_scores: ``Tensor[B, N, C]`` class probabilities over all levels.
        bbox_preds: ``Tensor[B, N, 4]`` predicted boxes in pixels.
        anchor_list: Per image, per level ``Tensor[n_l, 4]``.
        valid_flag_list: Per image, per level ``Tensor[n_l]`` bool.
        gt_bboxes_list: Per image ``Tensor[k, 4]``.
        img_metas: Per image meta (``img_shape``).
        assigner: A :class:`TaskAlignedAssigner`.
        sampler: The head's (pseudo) sampler.
        num_classes: Foreground classes (the background label).
        train_cfg: ``allowed_border``, ``pos_weight``, ``alpha`` and ``beta``.
        gt_bboxes_ignore_list: Per image ignored boxes.
        gt_labels_list: Per image labels.

    Returns:
        ``None`` when an image has no anchor inside it, else the :class:`AlignedTargets`.
    """
    num_imgs = len(img_metas)
    num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
    results = multi_apply(
        _aligned_targets_single,
        list(cls_scores),
        list(bbox_preds),
        [torch.cat(list(anchors)) for anchors in anchor_list],
        [torch.cat(list(flags)) for flags in valid_flag_list],
        gt_bboxes_list,
        list(gt_bboxes_ignore_list or [None] * num_imgs),
        list(gt_labels_list or [None] * num_imgs),
        img_metas,
        assigner=assigner,
        sampler=sampler,
        num_classes=num_classes,
        train_cfg=train_cfg,
    )
    if any(item is None for item in results[1]):
        return None
    anchors, labels, label_weights, bbox_targets, metrics = (
        images_to_levels(list(items), num_level_anchors) for items in results
    )
    return AlignedTargets(anchors, labels, label_weights, bbox_targets, metrics)
