"""The second stage of Faster/Mask R-CNN as a traceable graph.

RoI features are pooled level by level with the RoIs of the other levels shrunk to a point
and their features zeroed, so every ``RoiAlign`` node stays in the graph with a fixed number
of RoIs and no data-dependent indexing (each RoI still reads exactly one level). Box
post-processing is v2's ``multiclass_nms``: softmax scores without the background column,
per-class boxes, ``score_thr``, class-wise NMS, ``max_per_img``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torchvision

from detforge.export.common import (
    batched_nms_graph,
    clip_to_image,
    image_size,
    nms_settings,
)

__all__ = ["mask_probabilities", "needs_aligned_roi_align", "pool_rois", "rcnn_detections"]


def needs_aligned_roi_align(extractor: Any) -> bool:
    """Whether ``extractor`` pools with ``RoIAlign(aligned=True)`` (ONNX opset >= 16 exports
    it exactly)."""
    return any(bool(getattr(layer, "aligned", False)) for layer in extractor.roi_layers)


def _pool(layer: Any, feat: torch.Tensor, rois: torch.Tensor, legacy_aligned: bool) -> Any:
    if legacy_aligned and getattr(layer, "aligned", False):
        # opset < 16 has no half-pixel RoiAlign: shift the RoIs by half a feature pixel
        # instead; equal except for RoIs smaller than one feature cell (their size is
        # clamped to 1 without the half-pixel mode)
        shift = 0.5 / layer.spatial_scale
        shifted = torch.cat([rois[:, :1], rois[:, 1:] - shift], dim=1)
        return torchvision.ops.roi_align(
            feat,
            shifted,
            layer.output_size,
            layer.spatial_scale,
            layer.sampling_ratio,
            aligned=False,
        )
    return layer(feat, rois)


def pool_rois(
    extractor: Any,
    feats: Sequence[torch.Tensor],
    rois: torch.Tensor,
    legacy_aligned: bool = False,
) -> torch.Tensor:
    """``SingleRoIExtractor.forward`` for ``rois`` ``[K, 5]`` without data-dependent indexing.

    Args:
        extractor: A ``SingleRoIExtractor``.
        feats: The feature maps (the extractor reads its ``num_inputs`` first ones).
        rois: ``(batch index, x1, y1, x2, y2)``.
        legacy_aligned: Emulate ``aligned=True`` for ONNX opsets below 16.
    """
    num_levels = extractor.num_inputs
    if num_levels == 1:
        return _pool(extractor.roi_layers[0], feats[0], rois, legacy_aligned)
    levels = extractor.map_roi_levels(rois, num_levels)
    pooled: torch.Tensor | None = None
    for level in range(num_levels):
        mask = (levels == level).to(rois.dtype)
        level_feats = _pool(
            extractor.roi_layers[level], feats[level], rois * mask[:, None], legacy_aligned
        )
        level_feats = level_feats * mask[:, None, None, None].to(level_feats.dtype)
        pooled = level_feats if pooled is None else pooled + level_feats
    assert pooled is not None
    return pooled


def _rois(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes[:, :4]], dim=1)


def rcnn_detections(
    roi_head: Any,
    feats: Sequence[torch.Tensor],
    proposals: torch.Tensor,
    img: torch.Tensor,
    legacy_aligned: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dets [N, 5], labels [N])`` of ``StandardRoIHead.simple_test_bboxes`` for one image,
    in the frame of ``img``."""
    cfg = roi_head.test_cfg
    if cfg is None:
        raise ValueError("roi_head has no test_cfg (model.test_cfg.rcnn) to post-process with")
    bbox_head = roi_head.bbox_head
    rois = _rois(proposals)
    extractor = roi_head.bbox_roi_extractor
    pooled = pool_rois(extractor, feats[: extractor.num_inputs], rois, legacy_aligned)
    cls_score, bbox_pred = bbox_head(pooled)
    if cls_score is None:
        raise NotImplementedError("a box head without a classifier cannot be exported")
    scores = torch.softmax(cls_score, dim=-1)[:, :-1]
    height, width = image_size(img)
    if bbox_pred is not None:
        boxes = bbox_head.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=None)
        if getattr(bbox_head.bbox_coder, "clip_border", True):
            boxes = clip_to_image(boxes.reshape(boxes.shape[0], -1, 4), height, width)
    else:
        boxes = clip_to_image(rois[:, 1:], height, width)
    num_classes = int(bbox_head.num_classes)
    boxes = boxes.reshape(boxes.shape[0], -1, 4)
    if boxes.shape[1] == 1:
        boxes = boxes.expand(-1, num_classes, 4)
    labels = torch.arange(num_classes, device=scores.device).view(1, -1).expand_as(scores)
    boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    valid = scores > float(cfg["score_thr"])
    boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
    settings = nms_settings(cfg["nms"], "model.test_cfg.rcnn.nms")
    dets, keep = batched_nms_graph(boxes, scores, labels, settings, int(cfg["max_per_img"]))
    return dets, labels[keep]


def mask_probabilities(
    roi_head: Any,
    feats: Sequence[torch.Tensor],
    dets: torch.Tensor,
    labels: torch.Tensor,
    legacy_aligned: bool = False,
) -> torch.Tensor:
    """Mask probabilities ``[N, h, w]`` (the mask head's resolution, e.g. 28x28) of each
    detection's class over its box; ``paste_masks`` puts them into the image."""
    extractor = roi_head.mask_roi_extractor
    pooled = pool_rois(extractor, feats[: extractor.num_inputs], _rois(dets), legacy_aligned)
    logits = roi_head.mask_head(pooled)
    if not getattr(roi_head.mask_head, "class_agnostic", False):
        logits = logits[torch.arange(logits.shape[0], device=logits.device), labels]
    else:
        logits = logits[:, 0]
    return logits.sigmoid()
