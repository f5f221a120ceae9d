"""Test-time augmentation (``MultiScaleFlipAug`` flips and scales), merged as MMDetection v2 does.

Every augmented view runs on its own; boxes are mapped back to the original image
(``bbox_mapping_back``), then:

* dense heads: all views' candidate boxes are pooled and NMS'ed once;
* the RPN: all views' proposals are pooled, NMS'ed (class-agnostic) and cut to ``max_per_img``;
* R-CNN box heads: the per-class boxes and scores of each view are averaged, then multi-class
  NMS.

Only batch size 1 is supported, as in v2.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from detforge.ops import batched_nms, multiclass_nms, nms
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result, bbox2roi, bbox_mapping, bbox_mapping_back

__all__ = [
    "dense_aug_test",
    "flip_tensor",
    "merge_aug_bboxes",
    "merge_aug_proposals",
    "require_flip_pairs",
    "roi_aug_test",
    "rpn_aug_test",
]


def _back(bboxes: torch.Tensor, meta: ImgMeta) -> torch.Tensor:
    return bbox_mapping_back(
        bboxes,
        meta["img_shape"],
        meta["scale_factor"],
        meta.get("flip", False),
        meta.get("flip_direction") or "horizontal",
    )


def merge_aug_proposals(
    aug_proposals: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta], cfg: Mapping[str, Any]
) -> torch.Tensor:
    """One image's proposals from every view, in the original frame, NMS'ed and cut."""
    cfg = copy.deepcopy(dict(cfg))
    recovered = []
    for proposals, meta in zip(aug_proposals, img_metas, strict=True):
        mapped = proposals.clone()
        mapped[:, :4] = _back(mapped[:, :4], meta)
        recovered.append(mapped)
    merged = torch.cat(recovered, dim=0)
    dets, _ = nms(
        merged[:, :4].contiguous(), merged[:, -1].contiguous(), cfg["nms"]["iou_threshold"]
    )
    order = dets[:, 4].sort(0, descending=True)[1][: min(cfg["max_per_img"], dets.shape[0])]
    return dets[order, :]


def merge_aug_bboxes(
    aug_bboxes: Sequence[torch.Tensor],
    aug_scores: Sequence[torch.Tensor] | None,
    img_metas: Sequence[Sequence[ImgMeta]],
    mode: str = "mean",
) -> Any:
    """Map each view's boxes back; ``'mean'`` averages views (R-CNN), ``'concat'`` pools them."""
    recovered = [_back(b, metas[0]) for b, metas in zip(aug_bboxes, img_metas, strict=True)]
    combine = torch.stack if mode == "mean" else torch.cat
    bboxes = combine(recovered, dim=0)
    bboxes = bboxes.mean(dim=0) if mode == "mean" else bboxes
    if aug_scores is None:
        return bboxes
    scores = combine(list(aug_scores), dim=0)
    scores = scores.mean(dim=0) if mode == "mean" else scores
    return bboxes, scores


def flip_tensor(src: torch.Tensor, flip_direction: str) -> torch.Tensor:
    """Flip a ``[B, C, H, W]`` map the way ``RandomFlip`` flipped its image (v2's
    ``flip_tensor``): ``'horizontal'``, ``'vertical'`` or ``'diagonal'``.

    Example:
        >>> flip_tensor(torch.arange(4.).view(1, 1, 2, 2), 'horizontal')[0, 0, 0].tolist()
        [1.0, 0.0]
    """
    dims = {"horizontal": [3], "vertical": [2], "diagonal": [2, 3]}.get(flip_direction)
    if dims is None:
        raise ValueError(
            f"flip_direction must be 'horizontal', 'vertical' or 'diagonal', got {flip_direction!r}"
        )
    if src.ndim != 4:
        raise ValueError(f"flip_tensor needs a [B, C, H, W] map, got shape {tuple(src.shape)}")
    return torch.flip(src, dims)


def require_flip_pairs(
    imgs: Sequence[torch.Tensor], img_metas: Sequence[Sequence[ImgMeta]], owner: str
) -> None:
    """CenterNet's and CornerNet's flip test takes (view, flipped view) pairs (v2's check:
    one of the first two views is flipped).

    Raises:
        ValueError: fewer than two views, or neither of the first two is flipped.
    """
    if len(imgs) < 2 or not (img_metas[0][0]["flip"] or img_metas[1][0]["flip"]):
        raise ValueError(f"{owner} aug test needs (view, flipped view) pairs of images")


def _to_frame(det_bboxes: torch.Tensor, meta: ImgMeta, rescale: bool) -> torch.Tensor:
    """Merged boxes are in the original frame; without ``rescale`` scale them like view 0."""
    if rescale:
        return det_bboxes
    out = det_bboxes.clone()
    out[:, :4] *= det_bboxes.new_tensor(meta["scale_factor"])
    return out


def dense_aug_test(
    head: Any,
    feats: Sequence[Sequence[torch.Tensor]],
    img_metas: Sequence[Sequence[ImgMeta]],
    rescale: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A dense head over several views of one image: ``[(det_bboxes, det_labels)]``."""
    cfg = head.test_cfg
    boxes, scores, labels = [], [], []
    for x, metas in zip(feats, img_metas, strict=True):
        outs = head(x)  # scores, boxes (and score factors such as centerness)
        b, s, lab = head.get_bboxes(*outs, img_metas=metas, cfg=cfg, rescale=False, with_nms=False)[
            0
        ]
        boxes.append(b)
        scores.append(s)
        labels.append(lab)
    merged_boxes, merged_scores = merge_aug_bboxes(boxes, scores, img_metas, mode="concat")
    merged_labels = torch.cat(labels, dim=0)
    if merged_boxes.numel() == 0:
        return [(torch.cat([merged_boxes, merged_scores[:, None]], -1), merged_labels)]
    dets, keep = batched_nms(merged_boxes, merged_scores, merged_labels, cfg["nms"])
    max_per_img = cfg.get("max_per_img")  # None: no cap (YOLOX)
    dets = dets[:max_per_img]
    det_labels = merged_labels[keep][:max_per_img]
    return [(_to_frame(dets, img_metas[0][0], rescale), det_labels)]


def rpn_aug_test(
    rpn_head: Any, feats: Sequence[Sequence[torch.Tensor]], img_metas: Sequence[Sequence[ImgMeta]]
) -> list[torch.Tensor]:
    """Merged proposals per image, in the original frame."""
    per_image: list[list[torch.Tensor]] = [[] for _ in img_metas[0]]
    for x, metas in zip(feats, img_metas, strict=True):
        for i, proposals in enumerate(rpn_head.simple_test_rpn(x, metas)):
            per_image[i].append(proposals)
    return [
        merge_aug_proposals(props, [metas[i] for metas in img_metas], rpn_head.test_cfg)
        for i, props in enumerate(per_image)
    ]


def roi_aug_test(
    roi_head: Any,
    feats: Sequence[Sequence[torch.Tensor]],
    proposal_list: Sequence[torch.Tensor],
    img_metas: Sequence[Sequence[ImgMeta]],
    rescale: bool = False,
) -> list[list[Any]]:
    """A RoI head over several views of one image: v2 results ``[[ndarray[n, 5]] * C]``."""
    cfg = roi_head.test_cfg
    aug_bboxes, aug_scores = [], []
    for x, metas in zip(feats, img_metas, strict=True):
        meta = metas[0]
        proposals = bbox_mapping(
            proposal_list[0][:, :4],
            meta["img_shape"],
            meta["scale_factor"],
            meta.get("flip", False),
            meta.get("flip_direction") or "horizontal",
        )
        rois = bbox2roi([proposals])
        out = roi_head._bbox_forward(x, rois)
        bboxes, scores = roi_head.bbox_head.get_bboxes(
            rois,
            out["cls_score"],
            out["bbox_pred"],
            meta["img_shape"],
            meta["scale_factor"],
            rescale=False,
            cfg=None,
        )
        aug_bboxes.append(bboxes)
        aug_scores.append(scores)
    merged_bboxes, merged_scores = merge_aug_bboxes(aug_bboxes, aug_scores, img_metas)
    if merged_bboxes.shape[0] == 0:
        det_bboxes = merged_bboxes.new_zeros(0, 5)
        det_labels = merged_bboxes.new_zeros((0,), dtype=torch.long)
    else:
        det_bboxes, det_labels = multiclass_nms(
            merged_bboxes, merged_scores, cfg["score_thr"], cfg["nms"], cfg["max_per_img"]
        )[:2]
    det_bboxes = _to_frame(det_bboxes, img_metas[0][0], rescale)
    return [bbox2result(det_bboxes, det_labels, roi_head.bbox_head.num_classes)]
