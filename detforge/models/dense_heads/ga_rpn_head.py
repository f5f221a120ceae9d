"""``GARPNHead``: the guided-anchoring region proposal network (MMDetection v2.28).

A 3x3 conv and ReLU, then :class:`GuidedAnchorHead`'s layers with one (object) class. Losses are
:class:`GuidedAnchorHead`'s without labels, named ``loss_rpn_cls``, ``loss_rpn_bbox``,
``loss_anchor_shape`` and ``loss_anchor_loc``. Proposals, per level: the guided anchors kept by
the location filter (at test time), the ``nms_pre`` best, decoded and clipped, boxes not larger
than ``min_bbox_size`` dropped, NMS, the ``nms_post`` best; then over the levels an NMS again
(``nms_across_levels``) or the ``max_per_img`` best.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.guided_anchor_head import GuidedAnchorHead
from detforge.ops import nms
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta

__all__ = ["GARPNHead"]

_INIT: Cfg = MappingProxyType(
    dict(
        type="Normal",
        layer="Conv2d",
        std=0.01,
        override=dict(type="Normal", name="conv_loc", std=0.01, bias_prob=0.01),
    )
)


@MODELS.register_module()
class GARPNHead(GuidedAnchorHead):
    """Guided-anchoring RPN head; :class:`GuidedAnchorHead`'s arguments except
    ``num_classes`` (always 1). ``test_cfg`` (and the ``rpn_proposal`` settings) also take
    ``nms_post`` and ``nms_across_levels``.

    Raises:
        ValueError: the proposal settings name an NMS other than plain ``nms`` or lack
            ``nms_post``.
    """

    TEST_CFG_KEYS: ClassVar[frozenset[str]] = GuidedAnchorHead.TEST_CFG_KEYS | {
        "nms_post",
        "nms_across_levels",
    }

    def __init__(self, in_channels: int, init_cfg: Any = _INIT, **kwargs: Any) -> None:
        super().__init__(num_classes=1, in_channels=in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        super()._init_layers()

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        return super().forward_single(F.relu(self.rpn_conv(x), inplace=True))

    def loss(  # type: ignore[override]  # v2's signature: no gt_labels
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        shape_preds: Sequence[torch.Tensor],
        loc_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """The guided-anchoring losses with every ground truth an object."""
        losses = super().loss(
            cls_scores, bbox_preds, shape_preds, loc_preds, gt_bboxes, None, img_metas,
            gt_bboxes_ignore,
        )  # fmt: skip
        return dict(
            loss_rpn_cls=losses["loss_cls"],
            loss_rpn_bbox=losses["loss_bbox"],
            loss_anchor_shape=losses["loss_shape"],
            loss_anchor_loc=losses["loss_loc"],
        )

    def simple_test_rpn(
        self, x: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> list[torch.Tensor]:
        """Proposals ``[N, 5]`` (x1, y1, x2, y2, score) per image, in the resized frame."""
        get_bboxes: Callable[..., list[torch.Tensor]] = self.get_bboxes
        return get_bboxes(*self(x), img_metas=img_metas)

    def _ga_bboxes_single(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        mlvl_anchors: Sequence[torch.Tensor],
        mlvl_masks: Sequence[torch.Tensor],
        img_meta: ImgMeta,
        cfg: Cfg,
        rescale: bool,
    ) -> Any:
        nms_cfg = cfg["nms"]
        if nms_cfg.get("type", "nms") != "nms":
            raise InvalidArgumentError(
                f"GARPNHead: only plain nms is supported, got {dict(nms_cfg)!r}"
            )
        iou = nms_cfg["iou_threshold"]
        if "nms_post" not in cfg:
            raise InvalidArgumentError(
                "GARPNHead: the proposal settings (test_cfg.rpn) need nms_post"
            )
        nms_pre, min_size = cfg.get("nms_pre", -1), cfg.get("min_bbox_size", -1)
        mlvl_proposals = []
        for cls_score, bbox_pred, anchors, mask in zip(
            cls_scores, bbox_preds, mlvl_anchors, mlvl_masks, strict=True
        ):
            if mask.sum() == 0:
                continue
            cls_score = cls_score.permute(1, 2, 0)
            if self.use_sigmoid_cls:
                scores = cls_score.reshape(-1).sigmoid()
            else:
                scores = cls_score.reshape(-1, 2).softmax(dim=1)[:, :-1]
            scores = scores[mask]
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)[mask, :]
            if 0 < nms_pre < scores.shape[0]:
                _, topk = scores.topk(nms_pre)
                bbox_pred, anchors, scores = bbox_pred[topk, :], anchors[topk, :], scores[topk]
            proposals = self.bbox_coder.decode(anchors, bbox_pred, max_shape=img_meta["img_shape"])
            if min_size >= 0:
                w = proposals[:, 2] - proposals[:, 0]
                h = proposals[:, 3] - proposals[:, 1]
                valid = (w > min_size) & (h > min_size)
                if not valid.all():
                    proposals, scores = proposals[valid], scores[valid]
            proposals, _ = nms(proposals, scores, iou)
            mlvl_proposals.append(proposals[: cfg["nms_post"], :])
        if not mlvl_proposals:
            return cls_scores[0].new_zeros(0, 5)
        proposals = torch.cat(mlvl_proposals, 0)
        if cfg.get("nms_across_levels", False):
            proposals, _ = nms(proposals[:, :4], proposals[:, -1], iou)
            return proposals[: cfg["max_per_img"], :]
        num = min(cfg["max_per_img"], proposals.shape[0])
        _, topk = proposals[:, 4].topk(num)
        return proposals[topk, :]
