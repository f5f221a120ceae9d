"""Single-stage detectors: backbone → neck → dense head (``SingleStageDetector``, ``RetinaNet``)."""

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
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result

__all__ = ["RetinaNet", "SingleStageDetector"]


@MODELS.register_module()
class SingleStageDetector(BaseDetector):
    """Backbone, optional neck and one dense head (v2 API, see :class:`BaseDetector`).

    Args:
        backbone: Backbone config or module.
        neck: Neck config or module.
        bbox_head: Dense head config; it receives ``train_cfg``/``test_cfg`` from here.
        train_cfg: Training settings of the head (assigner, sampler, ...).
        test_cfg: Test settings of the head (score_thr, nms, max_per_img, ...).
        pretrained: Deprecated (use the backbone's ``init_cfg``); must be ``None`` here,
            the config normaliser rewrites it.
        init_cfg: Initialisation config.
    """

    def __init__(
        self,
        backbone: Cfg | nn.Module,
        neck: NeckCfg | None = None,
        bbox_head: Cfg | nn.Module | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        check_no_pretrained(pretrained)
        if bbox_head is None:
            raise ValueError(f"{type(self).__name__} needs a bbox_head")
        super().__init__(backbone=backbone, neck=neck, init_cfg=init_cfg)
        self.bbox_head = build_child(bbox_head, train_cfg=train_cfg, test_cfg=test_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_bbox(self) -> bool:
        return True

    def forward_dummy(self, img: torch.Tensor) -> Any:
        """Raw head outputs (for FLOP counting and export)."""
        return self.bbox_head(self.extract_feat(img))

    def forward_train(
        self,
        img: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """Losses with the head's v2 names (per-level lists for anchor heads)."""
        x = self.extract_feat(img)
        losses: dict[str, Any] = self.bbox_head.forward_train(
            x, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore
        )
        return losses

    def simple_test(
        self, img: torch.Tensor, img_metas: Sequence[ImgMeta], rescale: bool = False
    ) -> list[list[Any]]:
        """Per image a list over classes of ``ndarray [n, 5]``."""
        feats = self.extract_feat(img)
        results = self.bbox_head.simple_test(feats, img_metas, rescale=rescale)
        return [
            bbox2result(bboxes, labels, self.bbox_head.num_classes) for bboxes, labels in results
        ]

    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[list[Any]]:
        """Flip/multi-scale test of one image: views' boxes pooled, then one NMS (v2)."""
        results = self.bbox_head.aug_test(self.extract_feats(imgs), img_metas, rescale=rescale)
        return [
            bbox2result(bboxes, labels, self.bbox_head.num_classes) for bboxes, labels in results
        ]


@MODELS.register_module()
class RetinaNet(SingleStageDetector):
    """RetinaNet (focal loss dense detector); the arguments of :class:`SingleStageDetector`."""
