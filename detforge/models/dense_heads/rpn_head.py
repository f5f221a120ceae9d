"""``RPNHead``: the region proposal network of two-stage detectors (v2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.layers import ConvModule
from detforge.ops import batched_nms
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta

__all__ = ["RPNHead"]


@MODELS.register_module()
class RPNHead(AnchorHead):
    """One (or ``num_convs``) 3x3 conv, then 1x1 objectness and delta convs.

    Takes :class:`AnchorHead`'s arguments except ``num_classes`` (always 1). Losses are named
    ``loss_rpn_cls`` and ``loss_rpn_bbox``; proposals are the ``nms_pre`` best anchors of each
    level, decoded, filtered by ``min_bbox_size``, NMS'ed within each level, and cut to
    ``max_per_img``.
    """

    def __init__(
        self, in_channels: int, init_cfg: Any = None, num_convs: int = 1, **kwargs: Any
    ) -> None:
        self.num_convs = num_convs
        super().__init__(num_classes=1, in_channels=in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        self.rpn_conv: nn.Module
        if self.num_convs > 1:
            self.rpn_conv = nn.Sequential(
                *[
                    ConvModule(
                        self.in_channels if i == 0 else self.feat_channels,
                        self.feat_channels,
                        3,
                        padding=1,
                        inplace=False,
                    )
                    for i in range(self.num_convs)
                ]
            )
        else:
            self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(
            self.feat_channels, self.num_base_priors * self.cls_out_channels, 1
        )
        self.rpn_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.rpn_conv(x), inplace=True)
        return self.rpn_cls(x), self.rpn_reg(x)

    def loss(  # type: ignore[override]  # v2's signature: no gt_labels
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_rpn_cls``/``loss_rpn_bbox`` (v2's signature: no labels, every GT is object)."""
        losses = super().loss(cls_scores, bbox_preds, gt_bboxes, None, img_metas, gt_bboxes_ignore)
        return dict(loss_rpn_cls=losses["loss_cls"], loss_rpn_bbox=losses["loss_bbox"])

    def _get_bboxes_single(
        self,
        cls_score_list: Sequence[torch.Tensor],
        bbox_pred_list: Sequence[torch.Tensor],
        score_factor_list: Sequence[torch.Tensor | None],
        mlvl_priors: Sequence[torch.Tensor],
        img_meta: ImgMeta,
        cfg: Cfg | None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> torch.Tensor:
        cfg = self._test_cfg(cfg)
        nms_pre = cfg.get("nms_pre", -1)
        scores_l, preds_l, anchors_l, ids_l = [], [], [], []
        for level, (cls_score, bbox_pred, anchors) in enumerate(
            zip(cls_score_list, bbox_pred_list, mlvl_priors, strict=True)
        ):
            cls_score = cls_score.permute(1, 2, 0)
            if self.use_sigmoid_cls:
                scores = cls_score.reshape(-1).sigmoid()
            else:
                scores = cls_score.reshape(-1, 2).softmax(dim=1)[:, 0]
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            if 0 < nms_pre < scores.shape[0]:
                ranked, rank_inds = scores.sort(descending=True)
                topk = rank_inds[:nms_pre]
                scores = ranked[:nms_pre]
                bbox_pred = bbox_pred[topk, :]
                anchors = anchors[topk, :]
            scores_l.append(scores)
            preds_l.append(bbox_pred)
            anchors_l.append(anchors)
            ids_l.append(scores.new_full((scores.size(0),), level, dtype=torch.long))
        scores = torch.cat(scores_l)
        proposals: torch.Tensor = self.bbox_coder.decode(
            torch.cat(anchors_l), torch.cat(preds_l), max_shape=img_meta["img_shape"]
        )
        ids = torch.cat(ids_l)
        min_size = cfg.get("min_bbox_size", -1)
        if min_size >= 0:
            w = proposals[:, 2] - proposals[:, 0]
            h = proposals[:, 3] - proposals[:, 1]
            valid = (w > min_size) & (h > min_size)
            if not valid.all():
                proposals, scores, ids = proposals[valid], scores[valid], ids[valid]
        if proposals.numel() == 0:
            return proposals.new_zeros(0, 5)
        dets, _ = batched_nms(proposals, scores, ids, cfg["nms"])
        return dets[: cfg["max_per_img"]]

    def simple_test_rpn(
        self, x: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> list[torch.Tensor]:
        """Proposals ``[N, 5]`` (x1, y1, x2, y2, score) per image, in the resized frame."""
        cls_scores, bbox_preds = self(x)
        return self.get_bboxes(cls_scores, bbox_preds, img_metas=img_metas)
