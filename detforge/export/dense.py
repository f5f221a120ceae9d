"""Dense-head post-processing as a traceable graph (RetinaNet, ATSS, FCOS, GFL, VFNet, RPN).

It reproduces :meth:`detforge.models.dense_heads.BaseDenseHead._get_bboxes_single` (v2's
``BaseDenseHead._get_bboxes_single``) for one image: per level the ``nms_pre`` best
``(prior, class)`` pairs above ``score_thr``, boxes decoded by the head's coder and clipped to
the input, score factors (centerness) multiplied in, then class-wise NMS and ``max_per_img``.
Top-k comes before the threshold here (``TopK`` then a mask), which keeps the same pairs: every
pair above the threshold outranks every pair below it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from detforge.export.common import (
    anchors_of_level,
    batched_nms_graph,
    clip_to_image,
    image_size,
    nms_settings,
    points_of_level,
    top_scores,
)

__all__ = ["decode_level_boxes", "dense_detections", "level_priors", "rpn_proposals"]


def level_priors(head: Any, level: int, feat: torch.Tensor) -> torch.Tensor:
    """The head's priors (anchors ``[N, 4]`` or points ``[N, 2]``) for one level's map."""
    from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
    from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator

    generator = head.prior_generator
    if isinstance(generator, AnchorGenerator):
        return anchors_of_level(generator, level, feat)
    if isinstance(generator, MlvlPointGenerator):
        return points_of_level(generator, level, feat)
    raise NotImplementedError(
        f"{type(head).__name__}: prior generator {type(generator).__name__} cannot be exported "
        "(supported: AnchorGenerator, MlvlPointGenerator)"
    )


def decode_level_boxes(
    head: Any, level: int, priors: torch.Tensor, bbox_pred: torch.Tensor
) -> torch.Tensor:
    """Boxes ``[N, 4]`` of every prior of one level from ``bbox_pred`` ``[C, H, W]`` (one image),
    not yet clipped."""
    if hasattr(head, "integral"):  # GFL: distributions over distances from anchor centres
        from detforge.models.dense_heads.gfl_head import anchor_centers

        stride = head.prior_generator.strides[level][0]
        distances = head.integral(bbox_pred.permute(1, 2, 0)) * stride
        return head.bbox_coder.decode(anchor_centers(priors), distances, max_shape=None)
    preds = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
    return head.bbox_coder.decode(priors, preds, max_shape=None)


def _clip(head: Any, boxes: torch.Tensor, height: torch.Tensor, width: torch.Tensor) -> Any:
    if getattr(head.bbox_coder, "clip_border", True):
        return clip_to_image(boxes, height, width)
    return boxes


def _test_cfg(head: Any) -> Mapping[str, Any]:
    cfg = head.test_cfg
    if cfg is None:
        raise ValueError(f"{type(head).__name__} has no test_cfg to post-process with")
    return dict(cfg)


def dense_detections(
    head: Any, outs: Sequence[Sequence[torch.Tensor]], img: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dets [N, 5], labels [N])`` of one image from the head's raw outputs ``outs``
    (``cls_scores``, ``bbox_preds`` and optional score factors, one tensor per level).

    The boxes are in the frame of ``img`` (the network input), clipped to it.
    """
    cfg = _test_cfg(head)
    cls_scores, bbox_preds = outs[0], outs[1]
    factors = outs[2] if len(outs) > 2 else None
    num_classes = int(head.num_classes)
    score_thr = float(cfg["score_thr"])
    nms_pre = int(cfg.get("nms_pre", -1))
    height, width = image_size(img)
    all_boxes, all_scores, all_labels = [], [], []
    for level, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds, strict=True)):
        priors = level_priors(head, level, cls_score)
        boxes = _clip(head, decode_level_boxes(head, level, priors, bbox_pred[0]), height, width)
        logits = cls_score[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
        scores = logits.sigmoid() if head.use_sigmoid_cls else logits.softmax(-1)[:, :-1]
        values, inds = top_scores(scores.reshape(-1), nms_pre)
        valid = values > score_thr
        values, inds = values[valid], inds[valid]
        keep = torch.div(inds, num_classes, rounding_mode="floor")
        all_labels.append(inds - keep * num_classes)
        all_boxes.append(boxes[keep])
        if factors is not None:
            values = values * factors[level][0].permute(1, 2, 0).reshape(-1).sigmoid()[keep]
        all_scores.append(values)
    boxes = torch.cat(all_boxes)
    scores = torch.cat(all_scores)
    labels = torch.cat(all_labels)
    settings = nms_settings(cfg["nms"], f"{type(head).__name__}.test_cfg.nms")
    dets, keep = batched_nms_graph(boxes, scores, labels, settings, int(cfg["max_per_img"]))
    return dets, labels[keep]


def rpn_proposals(
    head: Any, outs: Sequence[Sequence[torch.Tensor]], img: torch.Tensor
) -> torch.Tensor:
    """The RPN's proposals ``[N, 5]`` (box, score) of one image, as ``RPNHead._get_bboxes_single``:
    the ``nms_pre`` best anchors per level, decoded and clipped, boxes not larger than
    ``min_bbox_size`` dropped, NMS within each level, ``max_per_img`` kept."""
    cfg = _test_cfg(head)
    nms_pre = int(cfg.get("nms_pre", -1))
    height, width = image_size(img)
    scores_l, preds_l, priors_l, ids_l = [], [], [], []
    for level, (cls_score, bbox_pred) in enumerate(zip(outs[0], outs[1], strict=True)):
        logits = cls_score[0].permute(1, 2, 0)
        if head.use_sigmoid_cls:
            scores = logits.reshape(-1).sigmoid()
        else:
            scores = logits.reshape(-1, 2).softmax(dim=1)[:, 0]
        preds = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
        priors = level_priors(head, level, cls_score)
        scores, inds = top_scores(scores, nms_pre)
        scores_l.append(scores)
        preds_l.append(preds[inds])
        priors_l.append(priors[inds])
        ids_l.append(torch.full_like(inds, level))
    scores = torch.cat(scores_l)
    proposals = head.bbox_coder.decode(torch.cat(priors_l), torch.cat(preds_l), max_shape=None)
    proposals = _clip(head, proposals, height, width)
    ids = torch.cat(ids_l)
    min_size = cfg.get("min_bbox_size", -1)
    if min_size >= 0:
        w = proposals[:, 2] - proposals[:, 0]
        h = proposals[:, 3] - proposals[:, 1]
        valid = (w > min_size) & (h > min_size)
        proposals, scores, ids = proposals[valid], scores[valid], ids[valid]
    settings = nms_settings(cfg["nms"], f"{type(head).__name__}.test_cfg.nms")
    dets, _ = batched_nms_graph(proposals, scores, ids, settings, int(cfg["max_per_img"]))
    return dets
