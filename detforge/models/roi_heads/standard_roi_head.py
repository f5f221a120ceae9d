"""``StandardRoIHead``: assign and sample proposals, pool RoI features, run the box head and,
for Mask R-CNN, the mask head on the positive RoIs (v2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.base_roi_head import (
    BaseRoIHead,
    assign_and_sample,
    detections_per_image,
    empty_detections,
    hard_mining,
    positive_flags,
    scale_factor_tensor,
)
from detforge.models.roi_heads.mask_heads import merge_aug_masks
from detforge.models.test_time_aug import roi_aug_test
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi, bbox_mapping

__all__ = ["StandardRoIHead"]


@MODELS.register_module()
class StandardRoIHead(BaseRoIHead):
    """Second stage of Faster R-CNN style detectors.

    Args:
        bbox_roi_extractor: RoI extractor config (``SingleRoIExtractor``).
        bbox_head: Box head config (``Shared2FCBBoxHead``, ...).
        mask_roi_extractor: RoI extractor of the mask branch; ``None`` with a ``mask_head``
            shares ``bbox_roi_extractor`` (the mask head then reuses the positive RoIs' box
            features in training).
        mask_head: Mask head config (``FCNMaskHead``) or ``None``.
        shared_head: Module applied to every pooled RoI feature before the box and mask heads
            (v2's C4 models: ``dict(type='ResLayer', depth=50, stage=3, ...)``), or ``None``.
        train_cfg: ``assigner``, ``sampler``, ``pos_weight`` (+ ``mask_size`` with a mask head;
            the detector's ``train_cfg.rcnn``).
        test_cfg: ``score_thr``, ``nms``, ``max_per_img`` (+ ``mask_thr_binary``;
            ``test_cfg.rcnn``).
        pretrained: Deprecated v2 argument; must be ``None``.
        init_cfg: Initialisation config.
    """

    def __init__(
        self,
        bbox_roi_extractor: Cfg | None = None,
        bbox_head: Cfg | None = None,
        mask_roi_extractor: Cfg | None = None,
        mask_head: Cfg | None = None,
        shared_head: Cfg | nn.Module | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            shared_head=shared_head,
            pretrained=pretrained,
            has_mask_head=mask_head is not None,
            has_mask_roi_extractor=mask_roi_extractor is not None,
        )
        if bbox_roi_extractor is None or bbox_head is None:
            raise InvalidArgumentError("StandardRoIHead needs bbox_roi_extractor and bbox_head")
        self._check_train_cfg(train_cfg)
        self.train_cfg = train_cfg
        self.bbox_roi_extractor = build_module(bbox_roi_extractor, MODELS)
        self.bbox_head = build_module(bbox_head, MODELS)
        self.share_roi_extractor = False
        self.mask_roi_extractor: Any = None
        self.mask_head: Any = None
        if mask_head is not None:
            if mask_roi_extractor is None:
                self.share_roi_extractor = True
                self.mask_roi_extractor = self.bbox_roi_extractor
            else:
                self.mask_roi_extractor = build_module(mask_roi_extractor, MODELS)
            self.mask_head = build_module(mask_head, MODELS)
        self.bbox_assigner: Any = None
        self.bbox_sampler: Any = None
        if train_cfg:
            self.bbox_assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            self.bbox_sampler = build_module(train_cfg["sampler"], TASK_UTILS)

    @property
    def num_classes(self) -> int:
        return int(self.bbox_head.num_classes)

    def _bbox_forward(self, x: Sequence[torch.Tensor], rois: torch.Tensor) -> dict[str, Any]:
        bbox_feats = self.bbox_roi_extractor(x[: self.bbox_roi_extractor.num_inputs], rois)
        bbox_feats = self._shared(bbox_feats)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(
        self,
        x: Sequence[torch.Tensor],
        rois: torch.Tensor | None = None,
        pos_inds: torch.Tensor | None = None,
        bbox_feats: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mask logits from ``rois`` (pooled, then the shared head), or from the box features
        ``bbox_feats[pos_inds]`` (already through the shared head)."""
        if (rois is None) == (pos_inds is None or bbox_feats is None):
            raise InvalidArgumentError(
                "_mask_forward needs either rois or both pos_inds and bbox_feats"
            )
        if rois is not None:
            mask_feats = self.mask_roi_extractor(x[: self.mask_roi_extractor.num_inputs], rois)
            mask_feats = self._shared(mask_feats)
        else:
            assert bbox_feats is not None and pos_inds is not None
            mask_feats = bbox_feats[pos_inds]
        return dict(mask_pred=self.mask_head(mask_feats), mask_feats=mask_feats)

    def _mask_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        bbox_feats: torch.Tensor,
        gt_masks: Sequence[Any],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """Mask logits of the positive RoIs, their targets and ``loss_mask``."""
        if not self.share_roi_extractor:
            pos_rois = bbox2roi([res.pos_bboxes for res in sampling_results])
            mask_results = self._mask_forward(x, pos_rois)
        else:
            pos_inds = positive_flags(sampling_results, bbox_feats.device)
            mask_results = self._mask_forward(x, pos_inds=pos_inds, bbox_feats=bbox_feats)
        assert self.train_cfg is not None
        mask_targets = self.mask_head.get_targets(sampling_results, gt_masks, self.train_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        loss_mask = self.mask_head.loss(mask_results["mask_pred"], mask_targets, pos_labels)
        return dict(mask_results, loss_mask=loss_mask, mask_targets=mask_targets)

    def _assign_and_sample(
        self,
        x: Sequence[torch.Tensor],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None,
    ) -> list[Any]:
        """Per image, the proposals assigned and sampled (:func:`assign_and_sample`)."""
        return assign_and_sample(
            self.bbox_assigner,
            self.bbox_sampler,
            x,
            proposal_list,
            gt_bboxes,
            gt_labels,
            gt_bboxes_ignore,
            mining=hard_mining(self._bbox_forward, self.bbox_head),
        )

    def _bbox_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """The box head on the sampled RoIs: its outputs, ``rois``, ``bbox_targets`` (labels,
        label weights, box targets, box weights) and ``loss_bbox`` (the dict of its losses)."""
        assert self.train_cfg is not None
        rois = bbox2roi([res.bboxes for res in sampling_results])
        results = self._bbox_forward(x, rois)
        targets = self.bbox_head.get_targets(sampling_results, gt_bboxes, gt_labels, self.train_cfg)
        losses = self.bbox_head.loss(results["cls_score"], results["bbox_pred"], rois, *targets)
        return dict(results, loss_bbox=losses, rois=rois, bbox_targets=targets)

    def forward_dummy(self, x: Sequence[torch.Tensor], proposals: torch.Tensor) -> tuple[Any, ...]:
        rois = bbox2roi([proposals])
        results = self._bbox_forward(x, rois)
        outs: tuple[Any, ...] = (results["cls_score"], results["bbox_pred"])
        if self.with_mask:
            outs += (self._mask_forward(x, rois[:100])["mask_pred"],)
        return outs

    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
        gt_masks: Any = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``acc``, ``loss_bbox`` on sampled proposals (plus GT boxes) and, with a
        mask head, ``loss_mask`` on the positive ones."""
        if self.bbox_assigner is None or self.bbox_sampler is None or self.train_cfg is None:
            raise RuntimeError("StandardRoIHead.forward_train needs train_cfg (assigner, sampler)")
        if self.with_mask and gt_masks is None:
            raise InvalidArgumentError(
                "StandardRoIHead.forward_train: the mask head needs gt_masks"
            )
        sampling_results = self._assign_and_sample(
            x, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore
        )
        results = self._bbox_forward_train(x, sampling_results, gt_bboxes, gt_labels, img_metas)
        losses: dict[str, torch.Tensor] = results["loss_bbox"]
        if self.with_mask:
            mask_results = self._mask_forward_train(
                x, sampling_results, results["bbox_feats"], gt_masks, img_metas
            )
            losses.update(mask_results["loss_mask"])
        return losses

    def simple_test_bboxes(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor],
        rcnn_test_cfg: Cfg | None,
        rescale: bool = False,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image ``det_bboxes [n, 5]`` and ``det_labels [n]``."""
        rois = bbox2roi(list(proposals))
        if rois.shape[0] == 0:
            empty = empty_detections(self.bbox_head, rois, rcnn_test_cfg)
            return [empty[0]] * len(proposals), [empty[1]] * len(proposals)
        results = self._bbox_forward(x, rois)
        counts = tuple(len(p) for p in proposals)
        rois_per_img = rois.split(counts, 0)
        scores = results["cls_score"].split(counts, 0)
        preds = (
            results["bbox_pred"].split(counts, 0)
            if results["bbox_pred"] is not None
            else (None,) * len(proposals)
        )
        return detections_per_image(
            self.bbox_head, rois_per_img, scores, preds, img_metas, rcnn_test_cfg, rescale
        )

    def simple_test_mask(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        det_bboxes: Sequence[torch.Tensor],
        det_labels: Sequence[torch.Tensor],
        rescale: bool = False,
    ) -> list[list[list[np.ndarray]]]:
        """Per image, per class, the bool masks of the detections (v2).

        With ``rescale`` the boxes are in the original frame: they are mapped back to the
        input frame (times ``scale_factor``) for the RoIs, and the masks are pasted at
        ``ori_shape``; otherwise at the resized image size.
        """
        if all(b.shape[0] == 0 for b in det_bboxes):
            return [[[] for _ in range(self.mask_head.num_classes)] for _ in det_bboxes]
        bboxes, scale_factors = self._mask_test_boxes(img_metas, det_bboxes, rescale)
        mask_pred = self._test_mask_logits(x, bbox2roi(bboxes), torch.cat(list(det_labels)))
        mask_preds = mask_pred.split([len(b) for b in det_bboxes], 0)
        return self._paste_masks(mask_preds, bboxes, det_labels, img_metas, scale_factors, rescale)

    def _test_mask_logits(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Mask logits of test RoIs ``[K, 5]`` detected as ``labels`` (PointRend refines
        them)."""
        return self._mask_forward(x, rois)["mask_pred"]

    @staticmethod
    def _mask_test_boxes(
        img_metas: Sequence[ImgMeta], det_bboxes: Sequence[torch.Tensor], rescale: bool
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image the detections' boxes in the network-input frame (times ``scale_factor``
        with ``rescale``) and the ``scale_factor`` as a tensor."""
        scale_factors = [
            scale_factor_tensor(meta["scale_factor"], boxes)
            for meta, boxes in zip(img_metas, det_bboxes, strict=True)
        ]
        bboxes = [
            b[:, :4] * f if rescale else b[:, :4]
            for b, f in zip(det_bboxes, scale_factors, strict=True)
        ]
        return bboxes, scale_factors

    def _paste_masks(
        self,
        mask_preds: Sequence[torch.Tensor],
        bboxes: Sequence[torch.Tensor],
        det_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        scale_factors: Sequence[torch.Tensor],
        rescale: bool,
    ) -> list[list[list[np.ndarray]]]:
        """Per image ``mask_head.get_seg_masks`` of the mask logits (empty lists for an image
        without detections)."""
        num_classes = self.mask_head.num_classes
        segm_results: list[list[list[np.ndarray]]] = []
        for i, meta in enumerate(img_metas):
            if bboxes[i].shape[0] == 0:
                segm_results.append([[] for _ in range(num_classes)])
                continue
            segm_results.append(
                self.mask_head.get_seg_masks(
                    mask_preds[i],
                    bboxes[i],
                    det_labels[i],
                    self.test_cfg,
                    meta["ori_shape"],
                    scale_factors[i],
                    rescale,
                )
            )
        return segm_results

    def aug_test(
        self,
        x: Sequence[Sequence[torch.Tensor]],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[Any]:
        """Test-time augmentation of one image: merged boxes and, with a mask head, masks
        averaged over the views (v2), pasted at the original image size."""
        if not self.with_mask:
            return roi_aug_test(self, x, proposal_list, img_metas, rescale=rescale)
        bbox_results = roi_aug_test(self, x, proposal_list, img_metas, rescale=True)[0]
        det_bboxes = torch.from_numpy(np.concatenate(bbox_results, axis=0))
        det_labels = torch.cat(
            [torch.full((len(b),), i, dtype=torch.long) for i, b in enumerate(bbox_results)]
        )
        segm_results = self.aug_test_mask(x, img_metas, det_bboxes, det_labels)
        if not rescale:
            factor = np.asarray(img_metas[0][0]["scale_factor"], dtype=np.float32)
            bbox_results = [b.copy() for b in bbox_results]
            for b in bbox_results:
                b[:, :4] *= factor
        return [(bbox_results, segm_results)]

    def aug_test_mask(
        self,
        feats: Sequence[Sequence[torch.Tensor]],
        img_metas: Sequence[Sequence[ImgMeta]],
        det_bboxes: torch.Tensor,
        det_labels: torch.Tensor,
    ) -> list[list[np.ndarray]]:
        """Masks of merged detections (original frame): probabilities averaged over views."""
        if det_bboxes.shape[0] == 0:
            return [[] for _ in range(self.mask_head.num_classes)]
        device = feats[0][0].device
        aug_masks = []
        for x, metas in zip(feats, img_metas, strict=True):
            meta = metas[0]
            boxes = bbox_mapping(
                det_bboxes[:, :4].to(device),
                meta["img_shape"],
                meta["scale_factor"],
                meta.get("flip", False),
                meta.get("flip_direction") or "horizontal",
            )
            mask_pred = self._test_mask_logits(x, bbox2roi([boxes]), det_labels.to(device))
            aug_masks.append(mask_pred.sigmoid().cpu().numpy())
        merged = merge_aug_masks(aug_masks, img_metas)
        result: list[list[np.ndarray]] = self.mask_head.get_seg_masks(
            merged,
            det_bboxes.to(device),
            det_labels.to(device),
            self.test_cfg,
            img_metas[0][0]["ori_shape"],
            scale_factor=np.ones(4, np.float32),
            rescale=False,
        )
        return result
