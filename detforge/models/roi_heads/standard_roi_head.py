"""``StandardRoIHead``: assign and sample proposals, pool RoI features, run the box head (v2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.layers import apply_init_cfg
from detforge.registry import MODELS, TASK_UTILS, build_module
from detforge.structures.bbox import bbox2result, bbox2roi

__all__ = ["StandardRoIHead"]

Cfg = Mapping[str, Any]


@MODELS.register_module()
class StandardRoIHead(nn.Module):
    """Second stage of Faster R-CNN style detectors.

    Args:
        bbox_roi_extractor: RoI extractor config (``SingleRoIExtractor``).
        bbox_head: Box head config (``Shared2FCBBoxHead``, ...).
        mask_roi_extractor: Not supported yet (Mask R-CNN is a later milestone).
        mask_head: Not supported yet.
        shared_head: Not supported yet.
        train_cfg: ``assigner``, ``sampler``, ``pos_weight`` (the detector's
            ``train_cfg.rcnn``).
        test_cfg: ``score_thr``, ``nms``, ``max_per_img`` (``test_cfg.rcnn``).
        pretrained: Deprecated v2 argument; must be ``None``.
        init_cfg: Initialisation config.
    """

    def __init__(
        self,
        bbox_roi_extractor: Cfg | None = None,
        bbox_head: Cfg | None = None,
        mask_roi_extractor: Cfg | None = None,
        mask_head: Cfg | None = None,
        shared_head: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        for name, value in (("mask_head", mask_head), ("mask_roi_extractor", mask_roi_extractor),
                            ("shared_head", shared_head)):  # fmt: skip
            if value is not None:
                raise NotImplementedError(
                    f"StandardRoIHead: {name} is not supported yet (Mask R-CNN and shared heads "
                    "arrive with the Models II milestone)"
                )
        if pretrained is not None:
            raise ValueError("roi_head.pretrained is deprecated; use init_cfg")
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError("StandardRoIHead needs bbox_roi_extractor and bbox_head")
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.init_cfg = init_cfg
        self.bbox_roi_extractor = build_module(bbox_roi_extractor, MODELS)
        self.bbox_head = build_module(bbox_head, MODELS)
        self.bbox_assigner: Any = None
        self.bbox_sampler: Any = None
        if train_cfg:
            self.bbox_assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            self.bbox_sampler = build_module(train_cfg["sampler"], TASK_UTILS)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    @property
    def with_bbox(self) -> bool:
        return True

    @property
    def with_mask(self) -> bool:
        return False

    def _bbox_forward(self, x: Sequence[torch.Tensor], rois: torch.Tensor) -> dict[str, Any]:
        bbox_feats = self.bbox_roi_extractor(x[: self.bbox_roi_extractor.num_inputs], rois)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def forward_dummy(self, x: Sequence[torch.Tensor], proposals: torch.Tensor) -> tuple[Any, ...]:
        rois = bbox2roi([proposals])
        results = self._bbox_forward(x, rois)
        return (results["cls_score"], results["bbox_pred"])

    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
        gt_masks: Any = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``acc`` and ``loss_bbox`` on sampled proposals (plus GT boxes)."""
        if self.bbox_assigner is None or self.bbox_sampler is None or self.train_cfg is None:
            raise RuntimeError("StandardRoIHead.forward_train needs train_cfg (assigner, sampler)")
        ignores = list(gt_bboxes_ignore or [None] * len(img_metas))
        sampling_results = []
        for i in range(len(img_metas)):
            assign_result = self.bbox_assigner.assign(
                proposal_list[i], gt_bboxes[i], ignores[i], gt_labels[i]
            )
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result, proposal_list[i], gt_bboxes[i], gt_labels[i]
                )
            )
        rois = bbox2roi([res.bboxes for res in sampling_results])
        results = self._bbox_forward(x, rois)
        targets = self.bbox_head.get_targets(sampling_results, gt_bboxes, gt_labels, self.train_cfg)
        losses: dict[str, torch.Tensor] = self.bbox_head.loss(
            results["cls_score"], results["bbox_pred"], rois, *targets
        )
        return losses

    def simple_test_bboxes(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        proposals: Sequence[torch.Tensor],
        rcnn_test_cfg: Cfg | None,
        rescale: bool = False,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image ``det_bboxes [n, 5]`` and ``det_labels [n]``."""
        rois = bbox2roi(list(proposals))
        if rois.shape[0] == 0:
            empty = rois.new_zeros(0, 5), rois.new_zeros((0,), dtype=torch.long)
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
        det_bboxes, det_labels = [], []
        for i, meta in enumerate(img_metas):
            if rois_per_img[i].shape[0] == 0:
                det_bboxes.append(rois_per_img[i].new_zeros(0, 5))
                det_labels.append(rois_per_img[i].new_zeros((0,), dtype=torch.long))
                continue
            bboxes, labels = self.bbox_head.get_bboxes(
                rois_per_img[i],
                scores[i],
                preds[i],
                meta["img_shape"],
                meta["scale_factor"],
                rescale=rescale,
                cfg=rcnn_test_cfg,
            )
            det_bboxes.append(bboxes)
            det_labels.append(labels)
        return det_bboxes, det_labels

    def simple_test(
        self,
        x: Sequence[torch.Tensor],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        proposals: Any = None,
        rescale: bool = False,
    ) -> list[list[Any]]:
        """v2 results: per image a list over classes of ``ndarray [n, 5]``."""
        det_bboxes, det_labels = self.simple_test_bboxes(
            x, img_metas, proposal_list, self.test_cfg, rescale=rescale
        )
        return [
            bbox2result(det_bboxes[i], det_labels[i], self.bbox_head.num_classes)
            for i in range(len(det_bboxes))
        ]
