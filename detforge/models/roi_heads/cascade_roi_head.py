"""``CascadeRoIHead``: a sequence of R-CNN stages, each refining the previous one's boxes (v2).

Training: stage ``i`` assigns and samples its proposals with ``train_cfg[i]`` (IoU thresholds
rise from stage to stage), computes its losses (logged as ``s{i}.loss_cls``, ``s{i}.acc``,
``s{i}.loss_bbox`` [, ``s{i}.loss_mask``], losses multiplied by ``stage_loss_weights[i]``),
then regresses every sampled RoI by its target class (negatives: the predicted class) to give
the next stage's proposals; ground-truth boxes added as proposals are dropped on the way.

Testing: the RoIs run through every stage, each refining them with its predicted class; the
classification logits of all stages are averaged and the last stage's deltas give the boxes.
Masks (Cascade Mask R-CNN) are averaged over the mask heads of all stages.

Subclasses (HTC, SCNet) fuse image-level context into the RoI features: ``_image_context(x)``
computes it once per image batch (``None`` here) and every forward takes it as ``ctx``;
``_stage_mask_logits`` gives the mask logits that are averaged, ``_paste_head`` the head that
pastes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import apply_init_cfg
from detforge.models.roi_heads.base_roi_head import (
    BaseRoIHead,
    assign_and_sample,
    detections_per_image,
    hard_mining,
    roi_results,
    scale_factor_tensor,
)
from detforge.models.roi_heads.mask_heads import merge_aug_masks
from detforge.models.test_time_aug import merge_aug_bboxes
from detforge.ops import multiclass_nms
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result, bbox2roi, bbox_mapping

__all__ = ["CascadeRoIHead"]


def _per_stage(cfg: Any, num_stages: int, name: str) -> list[Any]:
    """One config per stage: a list is checked for length, a single config is repeated."""
    if isinstance(cfg, list | tuple):
        if len(cfg) != num_stages:
            raise InvalidArgumentError(
                f"CascadeRoIHead: {name} has {len(cfg)} entries but num_stages is {num_stages}"
            )
        return list(cfg)
    return [cfg] * num_stages


def _activated(head: Any, cls_score: torch.Tensor) -> torch.Tensor:
    """Scores as the head's loss sees them (only custom-activation losses change them)."""
    if getattr(head, "custom_activation", False):
        activated: torch.Tensor = head.loss_cls.get_activation(cls_score)
        return activated
    return cls_score


@MODELS.register_module()
class CascadeRoIHead(BaseRoIHead):
    """Cascade R-CNN's RoI head (``mmdet.models.roi_heads.CascadeRoIHead``, v2).

    Args:
        num_stages: Number of stages.
        stage_loss_weights: Multiplier of each stage's losses (one per stage).
        bbox_roi_extractor: RoI extractor config, or a list with one per stage.
        bbox_head: Box head config, or a list with one per stage
            (state-dict keys ``bbox_head.{i}.*``).
        mask_roi_extractor: Mask RoI extractor config(s); ``None`` with a ``mask_head`` shares
            the box extractors.
        mask_head: Mask head config (``FCNMaskHead``), or a list with one per stage.
        shared_head: Not supported (as in v2).
        train_cfg: List with one ``train_cfg.rcnn`` entry per stage (``assigner``,
            ``sampler``, ``pos_weight`` [, ``mask_size``]).
        test_cfg: ``score_thr``, ``nms``, ``max_per_img`` [, ``mask_thr_binary``].
        pretrained: Deprecated v2 argument; must be ``None``.
        init_cfg: Initialisation config.

    Example:
        >>> head = CascadeRoIHead(
        ...     num_stages=2, stage_loss_weights=[1, 0.5],
        ...     bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=4,
        ...         roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        ...         featmap_strides=[4]),
        ...     bbox_head=dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8,
        ...                    num_classes=3, reg_class_agnostic=True))
        >>> [len(head.bbox_head), head.bbox_head[1].fc_cls.out_features]
        [2, 4]
    """

    def __init__(
        self,
        num_stages: int,
        stage_loss_weights: Sequence[float],
        bbox_roi_extractor: Cfg | Sequence[Cfg] | None = None,
        bbox_head: Cfg | Sequence[Cfg] | None = None,
        mask_roi_extractor: Cfg | Sequence[Cfg] | None = None,
        mask_head: Cfg | Sequence[Cfg] | None = None,
        shared_head: Cfg | None = None,
        train_cfg: Sequence[Cfg] | None = None,
        test_cfg: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        if shared_head is not None:
            raise NotImplementedError("CascadeRoIHead: shared_head is not supported (as in v2)")
        super().__init__(
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            shared_head=None,
            pretrained=pretrained,
            has_mask_head=mask_head is not None,
            has_mask_roi_extractor=mask_roi_extractor is not None,
        )
        if bbox_roi_extractor is None or bbox_head is None:
            raise InvalidArgumentError("CascadeRoIHead needs bbox_roi_extractor and bbox_head")
        if num_stages < 1:
            raise InvalidArgumentError(f"CascadeRoIHead: num_stages must be >= 1, got {num_stages}")
        if len(stage_loss_weights) != num_stages:
            raise InvalidArgumentError(
                f"CascadeRoIHead: stage_loss_weights {list(stage_loss_weights)} must have "
                f"num_stages={num_stages} entries"
            )
        self.num_stages = num_stages
        self.stage_loss_weights = [float(w) for w in stage_loss_weights]
        self.bbox_roi_extractor: Any = nn.ModuleList(
            build_module(c, MODELS)
            for c in _per_stage(bbox_roi_extractor, num_stages, "bbox_roi_extractor")
        )
        self.bbox_head: Any = nn.ModuleList(
            build_module(c, MODELS) for c in _per_stage(bbox_head, num_stages, "bbox_head")
        )
        for i, head in enumerate(self.bbox_head[:-1]):
            if not getattr(head, "with_reg", True):
                raise InvalidArgumentError(
                    f"CascadeRoIHead: bbox_head[{i}] must regress boxes (with_reg)"
                )
        self.share_roi_extractor = False
        self.mask_head: Any = None
        self.mask_roi_extractor: Any = None
        if mask_head is not None:
            self.mask_head = nn.ModuleList(
                build_module(c, MODELS) for c in _per_stage(mask_head, num_stages, "mask_head")
            )
            if mask_roi_extractor is None:
                self.share_roi_extractor = True
                self.mask_roi_extractor = self.bbox_roi_extractor
            else:
                self.mask_roi_extractor = nn.ModuleList(
                    build_module(c, MODELS)
                    for c in _per_stage(mask_roi_extractor, num_stages, "mask_roi_extractor")
                )
        self.train_cfg: list[Cfg] | None = None
        self.bbox_assigner: list[Any] = []
        self.bbox_sampler: list[Any] = []
        if train_cfg is not None:
            if not isinstance(train_cfg, list | tuple) or len(train_cfg) != num_stages:
                raise InvalidArgumentError(
                    "CascadeRoIHead: train_cfg (the detector's train_cfg.rcnn) must be a list "
                    f"with one entry per stage ({num_stages}), got {train_cfg!r}"
                )
            self.train_cfg = list(train_cfg)
            for cfg in self.train_cfg:
                self._check_train_cfg(cfg, "train_cfg (a stage's)")
                self.bbox_assigner.append(build_module(cfg["assigner"], TASK_UTILS))
                self.bbox_sampler.append(build_module(cfg["sampler"], TASK_UTILS))

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)
        stage_lists = [self.bbox_roi_extractor, self.bbox_head]
        if isinstance(self.mask_head, nn.ModuleList):  # (SCNet's one mask head is a child)
            stage_lists.append(self.mask_head)
            if not self.share_roi_extractor:
                stage_lists.append(self.mask_roi_extractor)
        for modules in stage_lists:
            for module in modules:
                if callable(getattr(module, "init_weights", None)):
                    module.init_weights()

    @property
    def num_classes(self) -> int:
        return int(self.bbox_head[-1].num_classes)

    # ------------------------------------------------------------------ forward
    def _image_context(self, x: Sequence[torch.Tensor]) -> Any:
        """Image-level features fused into the RoI features (none for Cascade R-CNN)."""
        return None

    @property
    def _paste_head(self) -> Any:
        """The mask head whose ``get_seg_masks`` pastes the averaged masks."""
        return self.mask_head[-1]

    def _bbox_forward(
        self, stage: int, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any = None
    ) -> dict[str, Any]:
        extractor = self.bbox_roi_extractor[stage]
        bbox_feats = extractor(x[: extractor.num_inputs], rois)
        cls_score, bbox_pred = self.bbox_head[stage](bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(
        self, stage: int, x: Sequence[torch.Tensor], rois: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        extractor = self.mask_roi_extractor[stage]
        mask_feats = extractor(x[: extractor.num_inputs], rois)
        return dict(mask_pred=self.mask_head[stage](mask_feats))

    def _stage_mask_logits(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any = None
    ) -> list[torch.Tensor]:
        """The mask logits of ``rois`` from every stage whose masks are averaged at test time."""
        return [self._mask_forward(i, x, rois)["mask_pred"] for i in range(self.num_stages)]

    def forward_dummy(self, x: Sequence[torch.Tensor], proposals: torch.Tensor) -> tuple[Any, ...]:
        """Every stage's outputs on the same RoIs (for FLOPs counting)."""
        ctx = self._image_context(x)
        rois = bbox2roi([proposals])
        outs: tuple[Any, ...] = ()
        for i in range(self.num_stages):
            results = self._bbox_forward(i, x, rois, ctx)
            outs += (results["cls_score"], results["bbox_pred"])
        if self.with_mask:
            outs += tuple(self._stage_mask_logits(x, rois[:100], ctx))
        return outs

    # ----------------------------------------------------------------- training
    def _bbox_forward_train(
        self,
        stage: int,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        rcnn_train_cfg: Cfg,
        ctx: Any = None,
    ) -> dict[str, Any]:
        rois = bbox2roi([res.bboxes for res in sampling_results])
        results = self._bbox_forward(stage, x, rois, ctx)
        head = self.bbox_head[stage]
        targets = head.get_targets(sampling_results, gt_bboxes, gt_labels, rcnn_train_cfg)
        losses = head.loss(results["cls_score"], results["bbox_pred"], rois, *targets)
        return dict(results, loss_bbox=losses, rois=rois, bbox_targets=targets)

    def _mask_forward_train(
        self,
        stage: int,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_masks: Sequence[Any],
        rcnn_train_cfg: Cfg,
    ) -> dict[str, Any]:
        pos_rois = bbox2roi([res.pos_bboxes for res in sampling_results])
        results = self._mask_forward(stage, x, pos_rois)
        head = self.mask_head[stage]
        targets = head.get_targets(sampling_results, gt_masks, rcnn_train_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        return dict(results, loss_mask=head.loss(results["mask_pred"], targets, pos_labels))

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
        """``s{i}.loss_cls``, ``s{i}.acc``, ``s{i}.loss_bbox`` (and ``s{i}.loss_mask``)."""
        if self.train_cfg is None:
            raise RuntimeError("CascadeRoIHead.forward_train needs train_cfg (one per stage)")
        if self.with_mask and gt_masks is None:
            raise InvalidArgumentError("CascadeRoIHead.forward_train: the mask heads need gt_masks")
        losses: dict[str, torch.Tensor] = {}
        proposals = list(proposal_list)
        for i in range(self.num_stages):
            weight = self.stage_loss_weights[i]
            stage_cfg = self.train_cfg[i]
            sampling_results = assign_and_sample(
                self.bbox_assigner[i],
                self.bbox_sampler[i],
                x,
                proposals,
                gt_bboxes,
                gt_labels,
                gt_bboxes_ignore,
                mining=hard_mining(partial(self._bbox_forward, i), self.bbox_head[i]),
            )
            bbox_results = self._bbox_forward_train(
                i, x, sampling_results, gt_bboxes, gt_labels, stage_cfg
            )
            stage_losses = dict(bbox_results["loss_bbox"])
            if self.with_mask:
                mask_results = self._mask_forward_train(i, x, sampling_results, gt_masks, stage_cfg)
                stage_losses.update(mask_results["loss_mask"])
            for name, value in stage_losses.items():
                losses[f"s{i}.{name}"] = value * weight if "loss" in name else value
            if i == self.num_stages - 1:
                break
            refined = self._next_proposals(i, bbox_results, sampling_results, img_metas)
            if refined is None:  # no RoI in the whole batch
                break
            proposals = refined
        return losses

    def _next_proposals(
        self,
        stage: int,
        bbox_results: Mapping[str, Any],
        sampling_results: Sequence[Any],
        img_metas: Sequence[ImgMeta],
    ) -> list[torch.Tensor] | None:
        """The sampled RoIs of ``stage`` regressed by its box head (no gradient): positives by
        their target class, negatives by their predicted class; ``None`` without RoIs."""
        head = self.bbox_head[stage]
        with torch.no_grad():
            cls_score = _activated(head, bbox_results["cls_score"])
            if cls_score.numel() == 0:
                return None
            roi_labels = bbox_results["bbox_targets"][0]
            roi_labels = torch.where(
                roi_labels == head.num_classes, cls_score[:, :-1].argmax(1), roi_labels
            )
            refined: list[torch.Tensor] = head.refine_bboxes(
                bbox_results["rois"],
                roi_labels,
                bbox_results["bbox_pred"],
                [res.pos_is_gt for res in sampling_results],
                img_metas,
            )
        return refined

    # ------------------------------------------------------------------ testing
    def _refine_test(
        self,
        x: Sequence[torch.Tensor],
        rois: torch.Tensor,
        counts: Sequence[int],
        img_metas: Sequence[ImgMeta],
        ctx: Any = None,
    ) -> tuple[tuple[torch.Tensor, ...], list[torch.Tensor], tuple[torch.Tensor | None, ...]]:
        """Run all stages: last stage's RoIs and deltas, stage-averaged logits (per image)."""
        ms_scores = []
        for i in range(self.num_stages):
            results = self._bbox_forward(i, x, rois, ctx)
            rois_per_img = rois.split(list(counts), 0)
            scores = results["cls_score"].split(list(counts), 0)
            preds = (
                results["bbox_pred"].split(list(counts), 0)
                if results["bbox_pred"] is not None
                else (None,) * len(counts)
            )
            ms_scores.append(scores)
            if i < self.num_stages - 1:
                head = self.bbox_head[i]
                refined = []
                for j, meta in enumerate(img_metas):
                    if rois_per_img[j].shape[0] > 0:
                        label = _activated(head, scores[j])[:, :-1].argmax(dim=1)
                        refined.append(
                            head.regress_by_class(rois_per_img[j], label, preds[j], meta)
                        )
                rois = torch.cat(refined)
        mean_scores = [
            sum(stage[j] for stage in ms_scores) / float(len(ms_scores))
            for j in range(len(img_metas))
        ]
        return rois_per_img, mean_scores, preds

    def simple_test(
        self,
        x: Sequence[torch.Tensor],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Any = None,
        rescale: bool = False,
    ) -> list[Any]:
        """v2 results (see :meth:`BaseRoIHead.simple_test`); the image context is computed
        once for the boxes and the masks."""
        ctx = self._image_context(x)
        det_bboxes, det_labels = self.simple_test_bboxes(
            x, img_metas, proposal_list, self.test_cfg, rescale=rescale, ctx=ctx
        )
        segm_results = None
        if self.with_mask:
            segm_results = self.simple_test_mask(
                x, img_metas, det_bboxes, det_labels, rescale, ctx=ctx
            )
        return roi_results(det_bboxes, det_labels, self.num_classes, segm_results)

    def simple_test_bboxes(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor],
        rcnn_test_cfg: Cfg | None,
        rescale: bool = False,
        ctx: Any = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image ``det_bboxes [n, 5]`` and ``det_labels [n]`` after all stages (``ctx``:
        the image context, computed here if not given)."""
        rois = bbox2roi(list(proposals))
        empty = rois.new_zeros(0, 5), rois.new_zeros((0,), dtype=torch.long)
        if rois.shape[0] == 0:
            return [empty[0]] * len(proposals), [empty[1]] * len(proposals)
        if ctx is None:
            ctx = self._image_context(x)
        counts = [len(p) for p in proposals]
        rois_per_img, scores, preds = self._refine_test(x, rois, counts, img_metas, ctx)
        return detections_per_image(
            self.bbox_head[-1], rois_per_img, scores, preds, img_metas, rcnn_test_cfg, rescale
        )

    def simple_test_mask(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        det_bboxes: Sequence[torch.Tensor],
        det_labels: Sequence[torch.Tensor],
        rescale: bool = False,
        ctx: Any = None,
    ) -> list[list[list[np.ndarray]]]:
        """Per image, per class, the bool masks: probabilities averaged over the stages' mask
        heads, pasted by the last one (at ``ori_shape`` with ``rescale``)."""
        num_classes = self._paste_head.num_classes
        if all(b.shape[0] == 0 for b in det_bboxes):
            return [[[] for _ in range(num_classes)] for _ in det_bboxes]
        factors = [
            scale_factor_tensor(m["scale_factor"], b)
            for m, b in zip(img_metas, det_bboxes, strict=True)
        ]
        bboxes = [
            b[:, :4] * f if rescale else b[:, :4] for b, f in zip(det_bboxes, factors, strict=True)
        ]
        mask_rois = bbox2roi(bboxes)
        counts = [len(b) for b in bboxes]
        if ctx is None:
            ctx = self._image_context(x)
        stage_probs = [
            [m.sigmoid().cpu().numpy() for m in mask_pred.split(counts, 0)]
            for mask_pred in self._stage_mask_logits(x, mask_rois, ctx)
        ]
        segm_results: list[list[list[np.ndarray]]] = []
        for j, meta in enumerate(img_metas):
            if det_bboxes[j].shape[0] == 0:
                segm_results.append([[] for _ in range(num_classes)])
                continue
            merged = np.mean([probs[j] for probs in stage_probs], axis=0)
            segm_results.append(
                self._paste_head.get_seg_masks(
                    merged,
                    bboxes[j],
                    det_labels[j],
                    self.test_cfg,
                    meta["ori_shape"],
                    factors[j],
                    rescale,
                )
            )
        return segm_results

    def aug_test(
        self,
        features: Sequence[Sequence[torch.Tensor]],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[Any]:
        """Test-time augmentation of one image (v2): each view runs the whole cascade, the
        views' boxes (mapped back) and scores are averaged, then multi-class NMS; masks
        average every view's and stage's probabilities and are pasted at ``ori_shape``."""
        if self.test_cfg is None:
            raise RuntimeError("CascadeRoIHead.aug_test needs test_cfg")
        cfg = self.test_cfg
        contexts = [self._image_context(x) for x in features]
        aug_bboxes, aug_scores = [], []
        for x, metas, ctx in zip(features, img_metas, contexts, strict=True):
            meta = metas[0]
            proposals = bbox_mapping(
                proposal_list[0][:, :4],
                meta["img_shape"],
                meta["scale_factor"],
                meta.get("flip", False),
                meta.get("flip_direction") or "horizontal",
            )
            rois = bbox2roi([proposals])
            if rois.shape[0] == 0:
                aug_bboxes.append(rois.new_zeros(0, 4))
                aug_scores.append(rois.new_zeros(0, self.bbox_head[-1].num_classes + 1))
                continue
            rois_per_img, scores, preds = self._refine_test(x, rois, [rois.shape[0]], metas, ctx)
            bboxes, probs = self.bbox_head[-1].get_bboxes(
                rois_per_img[0],
                scores[0],
                preds[0],
                meta["img_shape"],
                meta["scale_factor"],
                rescale=False,
                cfg=None,
            )
            aug_bboxes.append(bboxes)
            aug_scores.append(probs)
        merged_bboxes, merged_scores = merge_aug_bboxes(aug_bboxes, aug_scores, img_metas)
        if merged_bboxes.shape[0] == 0:
            det_bboxes = merged_bboxes.new_zeros(0, 5)
            det_labels = merged_bboxes.new_zeros((0,), dtype=torch.long)
        else:
            det_bboxes, det_labels = multiclass_nms(
                merged_bboxes, merged_scores, cfg["score_thr"], cfg["nms"], cfg["max_per_img"]
            )[:2]
        out_bboxes = det_bboxes
        if not rescale:
            out_bboxes = det_bboxes.clone()
            out_bboxes[:, :4] *= scale_factor_tensor(img_metas[0][0]["scale_factor"], det_bboxes)
        bbox_result = bbox2result(out_bboxes, det_labels, self.bbox_head[-1].num_classes)
        if not self.with_mask:
            return [bbox_result]
        segm_result = self._aug_test_mask(features, img_metas, det_bboxes, det_labels, contexts)
        return [(bbox_result, segm_result)]

    def _aug_test_mask(
        self,
        features: Sequence[Sequence[torch.Tensor]],
        img_metas: Sequence[Sequence[ImgMeta]],
        det_bboxes: torch.Tensor,
        det_labels: torch.Tensor,
        contexts: Sequence[Any],
    ) -> list[list[np.ndarray]]:
        if det_bboxes.shape[0] == 0:
            return [[] for _ in range(self._paste_head.num_classes)]
        aug_masks, aug_metas = [], []
        for x, metas, ctx in zip(features, img_metas, contexts, strict=True):
            meta = metas[0]
            boxes = bbox_mapping(
                det_bboxes[:, :4],
                meta["img_shape"],
                meta["scale_factor"],
                meta.get("flip", False),
                meta.get("flip_direction") or "horizontal",
            )
            for mask_pred in self._stage_mask_logits(x, bbox2roi([boxes]), ctx):
                aug_masks.append(mask_pred.sigmoid().cpu().numpy())
                aug_metas.append(metas)
        merged = merge_aug_masks(aug_masks, aug_metas)
        result: list[list[np.ndarray]] = self._paste_head.get_seg_masks(
            merged,
            det_bboxes,
            det_labels,
            self.test_cfg,
            img_metas[0][0]["ori_shape"],
            scale_factor=np.ones(4, np.float32),
            rescale=False,
        )
        return result
