"""``MaskScoringRoIHead``: Mask R-CNN's RoI head plus a ``MaskIoUHead`` that scores each mask
(Mask Scoring R-CNN, v2).

Training adds ``loss_mask_iou`` (see :mod:`detforge.models.roi_heads.maskiou_head`); it needs
``train_cfg.rcnn.mask_thr_binary``. At test time the mask part of each image's result is
``(segm_results, mask_scores)``: per class the masks and their scores (box score times the
predicted mask IoU), so a result is ``(bbox_results, (segm_results, mask_scores))`` as in v2;
test-time augmentation returns plain ``(bbox_results, segm_results)``, as v2's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.base_roi_head import BaseRoIHead
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi

__all__ = ["MaskScoringRoIHead"]


@MODELS.register_module()
class MaskScoringRoIHead(StandardRoIHead):
    """Mask Scoring R-CNN's RoI head (``mmdet.models.roi_heads.MaskScoringRoIHead``).

    Args:
        mask_iou_head: ``MaskIoUHead`` config (required).
        **kwargs: :class:`StandardRoIHead`'s arguments (a ``mask_head`` is required).

    Raises:
        ValueError: no ``mask_iou_head`` or no mask head.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = BaseRoIHead.TRAIN_CFG_KEYS | {"mask_thr_binary"}

    def __init__(self, mask_iou_head: Cfg | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mask_iou_head is None or not self.with_mask:
            raise InvalidArgumentError("MaskScoringRoIHead needs a mask_head and a mask_iou_head")
        self.mask_iou_head = build_module(mask_iou_head, MODELS)

    def _mask_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        bbox_feats: torch.Tensor,
        gt_masks: Sequence[Any],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """Mask Scoring: ``loss_mask`` and ``loss_mask_iou``."""
        results = super()._mask_forward_train(x, sampling_results, bbox_feats, gt_masks, img_metas)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        rows = torch.arange(pos_labels.numel(), device=pos_labels.device)
        pos_mask_pred = results["mask_pred"][rows, pos_labels]
        mask_iou_pred = self.mask_iou_head(results["mask_feats"], pos_mask_pred)
        assert self.train_cfg is not None
        targets = self.mask_iou_head.get_targets(
            sampling_results, gt_masks, pos_mask_pred, results["mask_targets"], self.train_cfg
        )
        results["loss_mask"].update(
            self.mask_iou_head.loss(mask_iou_pred[rows, pos_labels], targets)
        )
        return results

    def simple_test_mask(  # type: ignore[override]  # masks with their scores (v2)
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        det_bboxes: Sequence[torch.Tensor],
        det_labels: Sequence[torch.Tensor],
        rescale: bool = False,
    ) -> list[tuple[list[list[np.ndarray]], list[Any]]]:
        """Per image ``(segm_results, mask_scores)``: per class the bool masks and their scores
        (empty lists for an image without detections, as v2)."""
        num_classes = self.mask_head.num_classes
        if all(b.shape[0] == 0 for b in det_bboxes):
            return [([[] for _ in range(num_classes)], [[] for _ in range(num_classes)])] * len(
                det_bboxes
            )
        bboxes, scale_factors = self._mask_test_boxes(img_metas, det_bboxes, rescale)
        results = self._mask_forward(x, bbox2roi(bboxes))
        labels = torch.cat(list(det_labels))
        rows = torch.arange(labels.numel(), device=labels.device)
        mask_iou_pred = self.mask_iou_head(
            results["mask_feats"], results["mask_pred"][rows, labels]
        )
        counts = [len(b) for b in det_bboxes]
        mask_preds = results["mask_pred"].split(counts, 0)
        segm_results = self._paste_masks(
            mask_preds, bboxes, det_labels, img_metas, scale_factors, rescale
        )
        mask_scores: list[Any] = [
            self.mask_iou_head.get_mask_scores(iou, boxes, image_labels)
            if len(boxes)
            else [[] for _ in range(num_classes)]
            for iou, boxes, image_labels in zip(
                mask_iou_pred.split(counts, 0), det_bboxes, det_labels, strict=True
            )
        ]
        return list(zip(segm_results, mask_scores, strict=True))
