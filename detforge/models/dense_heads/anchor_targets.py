"""Training targets of anchor-based dense heads (v2's ``AnchorHead``/``ATSSHead.get_targets``).

Per image, only the anchors inside the image (``allowed_border`` pixels of slack, on valid
feature cells) take part. They are assigned to ground-truth boxes by the head's assigner —
a max-IoU assigner looks at the anchors alone, :class:`ATSSAssigner` also at how many of them
each level contributes — and sampled. Every sampled positive gets its ground truth's label (class 0
without labels, as in the RPN), label weight 1 (or ``pos_weight``) and its ground-truth box as
the box target (``encode(anchor, gt)`` when the head regresses deltas); sampled negatives get
the background label ``num_classes`` with weight 1; everything else weight 0. With
``per_class_weights`` (FSAF) the label weights are ``[N, num_classes]`` and the (anchor, class)
pairs of the assigner's ``shadowed_labels`` get weight 0. The targets are scattered back to all
anchors and split by level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.task_modules.assigners import ATSSAssigner
from detforge.models.utils import anchor_inside_flags, images_to_levels, multi_apply, unmap
from detforge.registry import Cfg
from detforge.structures import ImgMeta

__all__ = ["AnchorTargets", "anchor_targets"]


class AnchorTargets(NamedTuple):
    """The targets of a batch, each a per-level list of ``Tensor[B, n_l, ...]``."""

    #: the anchors themselves (all of them; only the inside ones with ``unmap_outputs=False``)
    anchors: list[torch.Tensor]
    labels: list[torch.Tensor]
    label_weights: list[torch.Tensor]
    #: ground-truth boxes ``x1, y1, x2, y2``, or their encoding for delta-regressing heads
    bbox_targets: list[torch.Tensor]
    bbox_weights: list[torch.Tensor]
    #: positives (negatives) summed over the images, each image counting at least 1
    num_total_pos: int
    num_total_neg: int
    #: per image, the sampler's result
    sampling_results: list[Any]


def _targets_single(
    flat_anchors: torch.Tensor,
    valid_flags: torch.Tensor,
    num_level_anchors: Sequence[int],
    gt_bboxes: torch.Tensor,
    gt_bboxes_ignore: torch.Tensor | None,
    gt_labels: torch.Tensor | None,
    img_meta: ImgMeta,
    predictions: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    assigner: Any,
    assign_labels: bool,
    sampler: Any,
    num_classes: int,
    train_cfg: Cfg,
    unmap_outputs: bool,
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    per_class_weights: bool,
) -> tuple[Any, ...]:
    inside = anchor_inside_flags(
        flat_anchors, valid_flags, img_meta["img_shape"][:2], train_cfg["allowed_border"]
    )
    if not inside.any():
        return (None,) * 8
    anchors = flat_anchors[inside, :]
    labels_in = gt_labels if assign_labels else None
    if isinstance(assigner, ATSSAssigner):  # its candidates are the top-k of each level
        level_inside = [int(f.sum()) for f in torch.split(inside, list(num_level_anchors))]
        scores, boxes = (None, None) if predictions is None else predictions
        assign_result = assigner.assign(
            anchors,
            level_inside,
            gt_bboxes,
            gt_bboxes_ignore,
            labels_in,
            cls_scores=None if scores is None else scores[inside],
            bbox_preds=None if boxes is None else boxes[inside],
        )
    else:
        assign_result = assigner.assign(anchors, gt_bboxes, gt_bboxes_ignore, labels_in)
    sampling_result = sampler.sample(assign_result, anchors, gt_bboxes)
    num_valid = anchors.shape[0]
    bbox_targets = torch.zeros_like(anchors)
    bbox_weights = torch.zeros_like(anchors)
    labels = anchors.new_full((num_valid,), num_classes, dtype=torch.long)
    label_weights = anchors.new_zeros(num_valid, dtype=torch.float)
    pos_inds = sampling_result.pos_inds
    neg_inds = sampling_result.neg_inds
    if len(pos_inds) > 0:
        pos_targets = sampling_result.pos_gt_bboxes
        if encode is not None:
            pos_targets = encode(sampling_result.pos_bboxes, pos_targets)
        bbox_targets[pos_inds, :] = pos_targets
        bbox_weights[pos_inds, :] = 1.0
        if gt_labels is None:  # the RPN: every foreground anchor is class 0
            labels[pos_inds] = 0
        else:
            labels[pos_inds] = gt_labels[sampling_result.pos_assigned_gt_inds]
        pos_weight = train_cfg["pos_weight"]
        label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
    if len(neg_inds) > 0:
        label_weights[neg_inds] = 1.0
    if per_class_weights:
        label_weights = label_weights[:, None].repeat(1, num_classes)
        shadowed = assign_result.get_extra_property("shadowed_labels")
        if shadowed is not None and shadowed.numel():
            label_weights[shadowed[:, 0], shadowed[:, 1]] = 0
    if unmap_outputs:
        total = flat_anchors.size(0)
        anchors = flat_anchors
        labels = unmap(labels, total, inside, fill=num_classes)
        label_weights = unmap(label_weights, total, inside)
        bbox_targets = unmap(bbox_targets, total, inside)
        bbox_weights = unmap(bbox_weights, total, inside)
    return (
        anchors,
        labels,
        label_weights,
        bbox_targets,
        bbox_weights,
        pos_inds,
        neg_inds,
        sampling_result,
    )


def anchor_targets(
    anchor_list: Sequence[Sequence[torch.Tensor]],
    valid_flag_list: Sequence[Sequence[torch.Tensor]],
    gt_bboxes_list: Sequence[torch.Tensor],
    img_metas: Sequence[ImgMeta],
    *,
    assigner: Any,
    sampler: Any,
    num_classes: int,
    train_cfg: Cfg,
    assign_labels: bool = True,
    gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
    gt_labels_list: Sequence[torch.Tensor | None] | None = None,
    unmap_outputs: bool = True,
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    per_class_weights: bool = False,
    predictions: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> AnchorTargets | None:
    """The targets of a batch (see the module docstring).

    Args:
        anchor_list: Per image, per level ``Tensor[n_l, 4]``.
        valid_flag_list: Per image, per level ``Tensor[n_l]`` bool.
        gt_bboxes_list: Per image ``Tensor[k, 4]``.
        img_metas: Per image meta (``img_shape``).
        assigner: The head's assigner (``MaxIoUAssigner``, ``ATSSAssigner``, ...).
        sampler: Sampler with ``sample(assign_result, anchors, gt_bboxes)``.
        num_classes: Foreground classes (the background label).
        train_cfg: ``allowed_border`` and ``pos_weight``.
        assign_labels: Give the labels to the assigner (v2's sampling anchor heads do not).
        gt_bboxes_ignore_list: Per image ignored boxes.
        gt_labels_list: Per image labels (``None``: every positive is class 0).
        unmap_outputs: Scatter targets back to all anchors.
        encode: Box coder encoding of the positive targets, or ``None`` to regress the
            ground-truth boxes themselves.
        per_class_weights: Label weights per anchor and class, 0 for the assigner's
            ``shadowed_labels``.
        predictions: Per image the score logits ``Tensor[N, C]`` and decoded boxes
            ``Tensor[N, 4]`` of all its anchors, for the cost-based :class:`ATSSAssigner`
            (DDOD).

    Returns:
        ``None`` when an image has no anchor inside it, else the :class:`AnchorTargets`.

    Raises:
        ValueError: the per-image lists differ in length.
    """
    num_imgs = len(img_metas)
    if not len(anchor_list) == len(valid_flag_list) == len(gt_bboxes_list) == num_imgs:
        raise InvalidArgumentError(
            f"anchor_targets: {len(anchor_list)} anchor lists, {len(valid_flag_list)} flag "
            f"lists and {len(gt_bboxes_list)} box lists for {num_imgs} images"
        )
    num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
    results = multi_apply(
        _targets_single,
        [torch.cat(list(anchors)) for anchors in anchor_list],
        [torch.cat(list(flags)) for flags in valid_flag_list],
        [num_level_anchors] * num_imgs,
        gt_bboxes_list,
        list(gt_bboxes_ignore_list or [None] * num_imgs),
        list(gt_labels_list or [None] * num_imgs),
        img_metas,
        list(predictions) if predictions is not None else [None] * num_imgs,
        assigner=assigner,
        assign_labels=assign_labels,
        sampler=sampler,
        num_classes=num_classes,
        train_cfg=train_cfg,
        unmap_outputs=unmap_outputs,
        encode=encode,
        per_class_weights=per_class_weights,
    )
    anchors, labels, label_weights, bbox_targets, bbox_weights, pos, neg, sampling = results
    if any(item is None for item in labels):
        return None
    return AnchorTargets(
        anchors=images_to_levels(anchors, num_level_anchors),
        labels=images_to_levels(labels, num_level_anchors),
        label_weights=images_to_levels(label_weights, num_level_anchors),
        bbox_targets=images_to_levels(bbox_targets, num_level_anchors),
        bbox_weights=images_to_levels(bbox_weights, num_level_anchors),
        num_total_pos=sum(max(inds.numel(), 1) for inds in pos),
        num_total_neg=sum(max(inds.numel(), 1) for inds in neg),
        sampling_results=list(sampling),
    )
