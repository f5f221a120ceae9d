"""``RPN``: a region proposal network alone (v2's ``RPN`` detector)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.models.detectors.base import (
    BaseDetector,
    NeckCfg,
    build_child,
    check_no_pretrained,
)
from detforge.models.detectors.two_stage import cfg_section
from detforge.models.test_time_aug import rpn_aug_test
from detforge.registry import MODELS, Cfg, check_cfg_keys
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_mapping

__all__ = ["RPN"]


@MODELS.register_module()
class RPN(BaseDetector):
    """Region proposal network alone: its results are proposals ``[N, 5]`` per image."""

    def __init__(
        self,
        backbone: Cfg | nn.Module,
        neck: NeckCfg | None,
        rpn_head: Cfg | nn.Module,
        train_cfg: Cfg | None,
        test_cfg: Cfg | None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        check_no_pretrained(pretrained)
        # a Faster R-CNN config's rpn_proposal and rcnn sections are accepted and unused
        check_cfg_keys(train_cfg, ("rpn", "rpn_proposal", "rcnn"), "train_cfg", self)
        check_cfg_keys(test_cfg, ("rpn", "rcnn"), "test_cfg", self)
        super().__init__(backbone=backbone, neck=neck, init_cfg=init_cfg)
        self.rpn_head = build_child(
            rpn_head, train_cfg=cfg_section(train_cfg, "rpn"), test_cfg=cfg_section(test_cfg, "rpn")
        )
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def forward_dummy(self, img: torch.Tensor) -> Any:
        return self.rpn_head(self.extract_feat(img))

    def forward_train(
        self,
        img: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Any = None,
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        x = self.extract_feat(img)
        losses: dict[str, Any] = self.rpn_head.forward_train(
            x, img_metas, gt_bboxes, None, gt_bboxes_ignore
        )
        return losses

    def simple_test(
        self, img: torch.Tensor, img_metas: Sequence[ImgMeta], rescale: bool = False
    ) -> list[np.ndarray]:
        """Proposals per image as ``ndarray [N, 5]`` (in the original frame with ``rescale``)."""
        proposals = self.rpn_head.simple_test_rpn(self.extract_feat(img), img_metas)
        out = []
        for proposal, meta in zip(proposals, img_metas, strict=True):
            if rescale:
                proposal = proposal.clone()
                proposal[:, :4] /= proposal.new_tensor(meta["scale_factor"])
            out.append(proposal.cpu().numpy())
        return out

    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[np.ndarray]:
        """Proposals of one image merged over its test-time views (v2): in the original frame
        with ``rescale``, else in the frame of the first view."""
        proposal_list = rpn_aug_test(self.rpn_head, self.extract_feats(imgs), img_metas)
        out = []
        for proposals, meta in zip(proposal_list, img_metas[0], strict=True):
            if not rescale:
                proposals = proposals.clone()
                proposals[:, :4] = bbox_mapping(
                    proposals[:, :4],
                    meta["img_shape"],
                    meta["scale_factor"],
                    meta.get("flip", False),
                    meta.get("flip_direction") or "horizontal",
                )
            out.append(proposals.cpu().numpy())
        return out
