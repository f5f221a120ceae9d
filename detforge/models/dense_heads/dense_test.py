"""Test-time post-processing and train/test entry points shared by every dense head (v2's
``BaseDenseHead``).

Per level the ``nms_pre`` best (prior, class) pairs above ``score_thr`` are decoded by the head's
box coder (clipped to ``img_shape``), optionally rescaled and multiplied by score factors
(centerness), then class-wise NMS keeps ``max_per_img``. Zero-size boxes are kept: v2's dense heads
filter by ``min_bbox_size`` only in the RPN. A head supplies ``cls_out_channels``,
``use_sigmoid_cls``, ``bbox_coder``, ``prior_generator``, ``test_cfg`` and ``loss``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist

from detforge.models.utils import filter_scores_and_topk, select_single_mlvl
from detforge.ops import batched_nms

__all__ = [
    "bbox_post_process",
    "dense_forward_train",
    "dense_get_bboxes",
    "dense_get_bboxes_single",
    "dense_simple_test",
    "reduce_mean",
]

Cfg = Mapping[str, Any]


def reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over the distributed ranks (``tensor`` itself when not distributed).

    Example:
        >>> reduce_mean(torch.tensor(4.0))
        tensor(4.)
    """
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    out = tensor.clone()
    dist.all_reduce(out.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return out


def dense_get_bboxes_single(
    head: Any,
    cls_score_list: Sequence[torch.Tensor],
    bbox_pred_list: Sequence[torch.Tensor],
    score_factor_list: Sequence[torch.Tensor | None],
    mlvl_priors: Sequence[torch.Tensor],
    img_meta: Cfg,
    cfg: Cfg | None,
    rescale: bool = False,
    with_nms: bool = True,
) -> Any:
    """v2's ``BaseDenseHead._get_bboxes_single`` for one image.

    ``head`` supplies ``cls_out_channels``, ``use_sigmoid_cls``, ``bbox_coder`` and
    ``test_cfg``. Score factors (logits) are passed through a sigmoid and multiply the scores
    after the top-k selection.

    Returns:
        ``(det_bboxes [n, 5], det_labels [n])``, or ``(bboxes, scores, labels)`` without NMS.
    """
    cfg = head.test_cfg if cfg is None else cfg
    if cfg is None:
        raise ValueError(f"{type(head).__name__}: no test_cfg for post-processing")
    with_factors = score_factor_list[0] is not None
    img_shape = img_meta["img_shape"]
    nms_pre = cfg.get("nms_pre", -1)
    mlvl_bboxes, mlvl_scores, mlvl_labels, mlvl_factors = [], [], [], []
    for cls_score, bbox_pred, factor, priors in zip(
        cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, strict=True
    ):
        if cls_score.shape[-2:] != bbox_pred.shape[-2:]:
            raise ValueError(
                f"{type(head).__name__}: score map {tuple(cls_score.shape)} and box map "
                f"{tuple(bbox_pred.shape)} differ in size"
            )
        bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
        cls_score = cls_score.permute(1, 2, 0).reshape(-1, head.cls_out_channels)
        scores = cls_score.sigmoid() if head.use_sigmoid_cls else cls_score.softmax(-1)[:, :-1]
        scores, labels, keep, filtered = filter_scores_and_topk(
            scores, cfg["score_thr"], nms_pre, dict(bbox_pred=bbox_pred, priors=priors)
        )
        assert filtered is not None
        bboxes = head.bbox_coder.decode(
            filtered["priors"], filtered["bbox_pred"], max_shape=img_shape
        )
        mlvl_bboxes.append(bboxes)
        mlvl_scores.append(scores)
        mlvl_labels.append(labels)
        if with_factors:
            assert factor is not None
            mlvl_factors.append(factor.permute(1, 2, 0).reshape(-1).sigmoid()[keep])
    return bbox_post_process(
        mlvl_scores,
        mlvl_labels,
        mlvl_bboxes,
        img_meta["scale_factor"],
        cfg,
        rescale=rescale,
        with_nms=with_nms,
        mlvl_score_factors=mlvl_factors if with_factors else None,
    )


def dense_get_bboxes(
    head: Any,
    cls_scores: Sequence[torch.Tensor],
    bbox_preds: Sequence[torch.Tensor],
    score_factors: Sequence[torch.Tensor] | None = None,
    img_metas: Sequence[Cfg] | None = None,
    cfg: Cfg | None = None,
    rescale: bool = False,
    with_nms: bool = True,
) -> list[Any]:
    """v2's ``BaseDenseHead.get_bboxes``: per image ``head._get_bboxes_single`` (by default
    :func:`dense_get_bboxes_single`; the RPN and GFL heads have their own).

    ``head.prior_generator.grid_priors`` gives the priors (anchors or points).
    """
    if img_metas is None:
        raise ValueError(f"{type(head).__name__}.get_bboxes needs img_metas")
    if len(cls_scores) != len(bbox_preds):
        raise ValueError(
            f"{type(head).__name__}: {len(cls_scores)} score levels for {len(bbox_preds)} box "
            "levels"
        )
    if score_factors is not None and len(score_factors) != len(cls_scores):
        raise ValueError(
            f"{type(head).__name__}: {len(score_factors)} score-factor levels for "
            f"{len(cls_scores)} score levels"
        )
    num_levels = len(cls_scores)
    featmap_sizes = [cls_scores[i].shape[-2:] for i in range(num_levels)]
    priors = head.prior_generator.grid_priors(
        featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device
    )
    results = []
    for img_id, meta in enumerate(img_metas):
        factors: Sequence[torch.Tensor | None] = (
            select_single_mlvl(score_factors, img_id)
            if score_factors is not None
            else [None] * num_levels
        )
        results.append(
            head._get_bboxes_single(
                select_single_mlvl(cls_scores, img_id),
                select_single_mlvl(bbox_preds, img_id),
                factors,
                priors,
                meta,
                cfg,
                rescale,
                with_nms,
            )
        )
    return results


def dense_forward_train(
    head: Any,
    x: Sequence[torch.Tensor],
    img_metas: Sequence[Cfg],
    gt_bboxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor] | None = None,
    gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    proposal_cfg: Cfg | None = None,
) -> Any:
    """v2's ``BaseDenseHead.forward_train``: ``head.loss(*outs, gt..., img_metas)``, and the
    proposals when ``proposal_cfg`` is given."""
    outs = head(x)
    if gt_labels is None:
        losses = head.loss(*outs, gt_bboxes, img_metas, gt_bboxes_ignore=gt_bboxes_ignore)
    else:
        losses = head.loss(
            *outs, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore=gt_bboxes_ignore
        )
    if proposal_cfg is None:
        return losses
    return losses, head.get_bboxes(*outs, img_metas=img_metas, cfg=proposal_cfg)


def dense_simple_test(
    head: Any, feats: Sequence[torch.Tensor], img_metas: Sequence[Cfg], rescale: bool = False
) -> list[Any]:
    """v2's ``simple_test_bboxes``: per image ``(det_bboxes [n, 5], det_labels [n])``."""
    outs = head(feats)
    return head.get_bboxes(*outs, img_metas=img_metas, rescale=rescale)


def bbox_post_process(
    mlvl_scores: Sequence[torch.Tensor],
    mlvl_labels: Sequence[torch.Tensor],
    mlvl_bboxes: Sequence[torch.Tensor],
    scale_factor: Any,
    cfg: Cfg,
    rescale: bool = False,
    with_nms: bool = True,
    mlvl_score_factors: Sequence[torch.Tensor] | None = None,
) -> Any:
    """Concatenate levels, rescale, apply score factors, then class-wise NMS (v2)."""
    bboxes = torch.cat(list(mlvl_bboxes))
    if rescale:
        bboxes = bboxes / bboxes.new_tensor(scale_factor)
    scores = torch.cat(list(mlvl_scores))
    labels = torch.cat(list(mlvl_labels))
    if mlvl_score_factors is not None:
        scores = scores * torch.cat(list(mlvl_score_factors))
    if not with_nms:
        return bboxes, scores, labels
    if bboxes.numel() == 0:
        return torch.cat([bboxes, scores[:, None]], -1), labels
    dets, keep = batched_nms(bboxes, scores, labels, cfg["nms"])
    max_per_img = cfg["max_per_img"]
    return dets[:max_per_img], labels[keep][:max_per_img]
