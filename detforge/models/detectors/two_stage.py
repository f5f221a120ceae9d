"""Two-stage detectors: ``TwoStageDetector`` and ``FasterRCNN``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.detectors.base import (
    BaseDetector,
    NeckCfg,
    build_child,
    check_no_pretrained,
)
from detforge.models.test_time_aug import rpn_aug_test
from detforge.registry import MODELS, Cfg, check_cfg_keys
from detforge.structures import ImgMeta

__all__ = ["FasterRCNN", "TwoStageDetector", "cfg_section"]


def cfg_section(cfg: Cfg | None, key: str) -> Any:
    """``cfg[key]`` of a ``train_cfg``/``test_cfg`` with per-stage sections (``None`` if
    absent)."""
    return None if cfg is None else cfg.get(key)


@MODELS.register_module()
class TwoStageDetector(BaseDetector):
    """Backbone, neck, RPN head and RoI head (v2 API, see :class:`BaseDetector`).

    The RPN head gets ``train_cfg.rpn``/``test_cfg.rpn`` and the RoI head
    ``train_cfg.rcnn``/``test_cfg.rcnn``; training proposals use ``train_cfg.rpn_proposal``.
    """

    def __init__(
        self,
        backbone: Cfg | nn.Module,
        neck: NeckCfg | None = None,
        rpn_head: Cfg | nn.Module | None = None,
        roi_head: Cfg | nn.Module | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        check_no_pretrained(pretrained)
        check_cfg_keys(train_cfg, ("rpn", "rpn_proposal", "rcnn"), "train_cfg", self)
        check_cfg_keys(test_cfg, ("rpn", "rcnn"), "test_cfg", self)
        super().__init__(backbone=backbone, neck=neck, init_cfg=init_cfg)
        self.rpn_head = build_child(
            rpn_head, train_cfg=cfg_section(train_cfg, "rpn"), test_cfg=cfg_section(test_cfg, "rpn")
        )
        self.roi_head = build_child(
            roi_head,
            train_cfg=cfg_section(train_cfg, "rcnn"),
            test_cfg=cfg_section(test_cfg, "rcnn"),
        )
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_rpn(self) -> bool:
        return self.rpn_head is not None

    @property
    def with_bbox(self) -> bool:
        return self.roi_head is not None

    def forward_dummy(self, img: torch.Tensor) -> tuple[Any, ...]:
        """RPN outputs and the RoI head's outputs on 1000 random proposals."""
        x = self.extract_feat(img)
        outs: tuple[Any, ...] = ()
        if self.with_rpn:
            outs += (self.rpn_head(x),)
        proposals = torch.randn(1000, 4, device=img.device)
        return (*outs, self.roi_head.forward_dummy(x, proposals))

    def forward_train(
        self,
        img: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
        gt_masks: Any = None,
        proposals: Sequence[torch.Tensor] | None = None,
        gt_semantic_seg: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """``loss_rpn_cls``, ``loss_rpn_bbox`` (per level), ``loss_cls``, ``acc``, ``loss_bbox``.

        ``gt_semantic_seg`` (``Tensor[B, 1, h, w]``) goes to a RoI head with a semantic branch
        (HTC, SCNet: ``roi_head.with_semantic``); other heads ignore it, as in v2.
        """
        x = self.extract_feat(img)
        losses: dict[str, Any] = {}
        if self.with_rpn:
            proposal_cfg = cfg_section(self.train_cfg, "rpn_proposal") or cfg_section(
                self.test_cfg, "rpn"
            )
            rpn_losses, proposal_list = self.rpn_head.forward_train(
                x, img_metas, gt_bboxes, None, gt_bboxes_ignore, proposal_cfg=proposal_cfg
            )
            losses.update(rpn_losses)
        elif proposals is None:
            raise ValueError("a detector without rpn_head needs proposals")
        else:
            proposal_list = list(proposals)
        extra = {}
        if getattr(self.roi_head, "with_semantic", False):
            extra["gt_semantic_seg"] = gt_semantic_seg
        losses.update(
            self.roi_head.forward_train(
                x,
                img_metas,
                proposal_list,
                gt_bboxes,
                gt_labels,
                gt_bboxes_ignore,
                gt_masks,
                **extra,
            )
        )
        return losses

    def simple_test(
        self,
        img: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor] | None = None,
        rescale: bool = False,
    ) -> Any:
        """Per image a list over classes of ``ndarray [n, 5]``."""
        x = self.extract_feat(img)
        proposal_list = (
            self.rpn_head.simple_test_rpn(x, img_metas) if proposals is None else proposals
        )
        return self.roi_head.simple_test(x, proposal_list, img_metas, rescale=rescale)

    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[list[Any]]:
        """Flip/multi-scale test of one image: merged proposals, averaged R-CNN scores (v2)."""
        feats = self.extract_feats(imgs)
        proposals = rpn_aug_test(self.rpn_head, feats, img_metas)
        results: list[list[Any]] = self.roi_head.aug_test(
            feats, proposals, img_metas, rescale=rescale
        )
        return results


@MODELS.register_module()
class FasterRCNN(TwoStageDetector):
    """Faster R-CNN; the arguments of :class:`TwoStageDetector`."""
