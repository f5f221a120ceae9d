"""``SparseRCNN`` and ``QueryInst``: learned proposals refined by a ``SparseRoIHead`` (v2.28).

The ``EmbeddingRPNHead`` gives every image the same learned proposals (scaled to its size) and
proposal features; the ``SparseRoIHead`` refines them stage by stage. QueryInst is the same
detector with mask heads in its RoI head (v2's ``QueryInst`` class adds nothing), so both names
build this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta

__all__ = ["SparseRCNN"]


@MODELS.register_module(name=["SparseRCNN", "QueryInst"])
class SparseRCNN(TwoStageDetector):
    """Sparse R-CNN (and QueryInst); the arguments of :class:`TwoStageDetector`.

    Raises:
        ValueError: no ``rpn_head`` (external proposals are not supported, as in v2).
    """

    def __init__(
        self,
        backbone: Cfg | nn.Module,
        rpn_head: Cfg | nn.Module,
        roi_head: Cfg | nn.Module,
        **kwargs: Any,
    ) -> None:
        if rpn_head is None:
            raise ValueError("Sparse R-CNN and QueryInst need rpn_head (an EmbeddingRPNHead)")
        super().__init__(backbone=backbone, rpn_head=rpn_head, roi_head=roi_head, **kwargs)

    def forward_dummy(self, img: torch.Tensor) -> tuple[Any, ...]:
        """Every stage's outputs for an 800x1333 image shape (as v2, for FLOPs counting)."""
        x = self.extract_feat(img)
        metas = [dict(img_shape=(800, 1333, 3)) for _ in range(len(img))]
        boxes, feats, _ = self.rpn_head.simple_test_rpn(x, metas)
        return tuple(self.roi_head.forward_dummy(x, boxes, feats, metas))

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
        """``stage{i}_loss_cls``, ``stage{i}_pos_acc``, ``stage{i}_loss_bbox``,
        ``stage{i}_loss_iou`` (and ``stage{i}_loss_mask``) for every stage."""
        if proposals is not None:
            raise ValueError("Sparse R-CNN and QueryInst do not support external proposals")
        x = self.extract_feat(img)
        boxes, feats, whwh = self.rpn_head.forward_train(x, img_metas)
        losses: dict[str, Any] = self.roi_head.forward_train(
            x,
            boxes,
            feats,
            img_metas,
            gt_bboxes,
            gt_labels,
            gt_bboxes_ignore=gt_bboxes_ignore,
            imgs_whwh=whwh,
            gt_masks=gt_masks,
        )
        return losses

    def simple_test(
        self,
        img: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor] | None = None,
        rescale: bool = False,
    ) -> Any:
        """Per image a list over classes of ``ndarray [n, 5]`` (with masks: a pair)."""
        if proposals is not None:
            raise ValueError("Sparse R-CNN and QueryInst do not support external proposals")
        x = self.extract_feat(img)
        boxes, feats, whwh = self.rpn_head.simple_test_rpn(x, img_metas)
        return self.roi_head.simple_test(
            x, boxes, feats, img_metas, imgs_whwh=whwh, rescale=rescale
        )

    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[list[Any]]:
        """Not supported (as in v2)."""
        raise NotImplementedError(
            "Sparse R-CNN and QueryInst do not support test-time augmentation"
        )
