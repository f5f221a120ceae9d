"""``SparseRoIHead``: the stages of Sparse R-CNN and QueryInst (MMDetection v2.28).

Every stage pools the current boxes of all ``P`` proposals per image (RoIAlign), runs its
``DIIHead`` on those features and the object features of the previous stage, and decodes its
deltas onto the boxes: the new boxes and object features feed the next stage. There is no
sampling: in training each stage matches its (detached) boxes and scores one-to-one to the
ground truths with its ``HungarianAssigner`` (boxes as ``cx, cy, w, h`` normalised by the image
size; the sampler must be ``PseudoSampler``) and computes its losses, logged as v2 does as
``stage{i}_loss_cls``, ``stage{i}_pos_acc``, ``stage{i}_loss_bbox``, ``stage{i}_loss_iou``
(and ``stage{i}_loss_mask`` with QueryInst's mask heads), each times
``stage_loss_weights[i]``. ``gt_bboxes_ignore`` is not used.

Testing: after the last stage, the scores of all ``P x num_classes`` (proposal, class) pairs
(sigmoid, or softmax without background) give the top ``test_cfg.max_per_img`` detections per
image with no threshold and no NMS (sorted by score; v2 leaves the order unsorted), boxes
divided by ``scale_factor`` with ``rescale``. With a mask head, the last stage's masks of those
detections are pasted by ``get_seg_masks`` (each image uses its own top-k indices; v2 used the
last image's for the whole batch, which only matters for batches of several images).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result, bbox2roi, bbox_xyxy_to_cxcywh

__all__ = ["SparseRoIHead"]


@MODELS.register_module()
class SparseRoIHead(CascadeRoIHead):
    """The RoI head of Sparse R-CNN and QueryInst (``mmdet...SparseRoIHead``, v2.28).

    Args:
        num_stages: Number of stages.
        stage_loss_weights: Multiplier of each stage's losses.
        proposal_feature_channel: Channels of the object features.
        **kwargs: ``CascadeRoIHead`` arguments (``bbox_roi_extractor``, ``bbox_head`` with
            ``DIIHead`` configs, ``mask_roi_extractor``/``mask_head`` for QueryInst,
            ``train_cfg`` with one ``HungarianAssigner``/``PseudoSampler`` per stage,
            ``test_cfg`` with ``max_per_img`` [, ``mask_thr_binary``]).

    Raises:
        ValueError: a stage's sampler is not a ``PseudoSampler``.
    """

    def __init__(
        self,
        num_stages: int = 6,
        stage_loss_weights: Sequence[float] = (1, 1, 1, 1, 1, 1),
        proposal_feature_channel: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_stages=num_stages, stage_loss_weights=stage_loss_weights, **kwargs)
        self.proposal_feature_channel = proposal_feature_channel
        for i, sampler in enumerate(self.bbox_sampler):
            if not isinstance(sampler, PseudoSampler):
                raise InvalidArgumentError(
                    f"SparseRoIHead: train_cfg[{i}].sampler must be PseudoSampler (Sparse R-CNN "
                    f"and QueryInst match one-to-one), got {type(sampler).__name__}"
                )

    # ------------------------------------------------------------------ forward
    def _sparse_forward(
        self,
        stage: int,
        x: Sequence[torch.Tensor],
        proposal_list: Sequence[torch.Tensor],
        object_feats: torch.Tensor,
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """One stage: scores ``[N, P, K]``, refined boxes (per image ``[P, 4]``, with and
        without gradient: ``proposal_list``, ``detached``), object and attention features."""
        rois = bbox2roi(proposal_list)
        extractor = self.bbox_roi_extractor[stage]
        head = self.bbox_head[stage]
        bbox_feats = extractor(x[: extractor.num_inputs], rois)
        cls_score, bbox_pred, object_feats, attn_feats = head(bbox_feats, object_feats)
        num_proposals = object_feats.size(1)
        refined: list[torch.Tensor] = head.refine_bboxes(
            rois,
            rois.new_zeros(len(rois)),  # unused: the head is class-agnostic
            bbox_pred.view(-1, bbox_pred.size(-1)),
            [rois.new_zeros(num_proposals) for _ in img_metas],  # no proposal is a GT box
            img_metas,
        )
        return dict(
            cls_score=cls_score,
            decode_bbox_pred=torch.cat(refined),
            object_feats=object_feats,
            attn_feats=attn_feats,
            proposal_list=refined,
            detached=[p.detach() for p in refined],
        )

    def _sparse_mask_forward(
        self, stage: int, x: Sequence[torch.Tensor], rois: torch.Tensor, attn_feats: torch.Tensor
    ) -> torch.Tensor:
        extractor = self.mask_roi_extractor[stage]
        mask_pred: torch.Tensor = self.mask_head[stage](
            extractor(x[: extractor.num_inputs], rois), attn_feats
        )
        return mask_pred

    def forward_dummy(  # type: ignore[override]  # v2's Sparse R-CNN signature
        self,
        x: Sequence[torch.Tensor],
        proposal_boxes: torch.Tensor,
        proposal_features: torch.Tensor,
        img_metas: Sequence[ImgMeta],
    ) -> list[tuple[Any, ...]]:
        """Every stage's outputs (for FLOPs counting)."""
        outs: list[tuple[Any, ...]] = []
        proposal_list = list(proposal_boxes)
        object_feats = proposal_features
        for stage in range(self.num_stages):
            results = self._sparse_forward(stage, x, proposal_list, object_feats, img_metas)
            proposal_list, object_feats = results["detached"], results["object_feats"]
            outs.append((results,))
            if self.with_mask:
                mask = self._sparse_mask_forward(
                    stage, x, bbox2roi(proposal_list), results["attn_feats"].flatten(0, 1)
                )
                outs[-1] += (dict(mask_pred=mask),)
        return outs

    # ----------------------------------------------------------------- training
    def forward_train(  # type: ignore[override]  # v2's Sparse R-CNN signature
        self,
        x: Sequence[torch.Tensor],
        proposal_boxes: torch.Tensor,
        proposal_features: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
        imgs_whwh: torch.Tensor | None = None,
        gt_masks: Any = None,
    ) -> dict[str, torch.Tensor]:
        """The losses of every stage (see the module docstring).

        Args:
            x: Neck features.
            proposal_boxes: ``Tensor[N, P, 4]`` from the ``EmbeddingRPNHead``.
            proposal_features: ``Tensor[N, P, C]``.
            img_metas: Per image meta (``img_shape``).
            gt_bboxes: Per image ``Tensor[K, 4]``.
            gt_labels: Per image ``Tensor[K]``.
            gt_bboxes_ignore: Not used.
            imgs_whwh: ``Tensor[N, 1, 4]`` image sizes from the RPN head.
            gt_masks: Per image masks (with a mask head).
        """
        if self.train_cfg is None:
            raise RuntimeError("SparseRoIHead.forward_train needs train_cfg (one per stage)")
        if imgs_whwh is None:
            raise InvalidArgumentError("SparseRoIHead.forward_train needs imgs_whwh")
        if self.with_mask and gt_masks is None:
            raise InvalidArgumentError("SparseRoIHead.forward_train: the mask heads need gt_masks")
        num_proposals = proposal_boxes.size(1)
        whwh = imgs_whwh.repeat(1, num_proposals, 1)
        proposal_list = list(proposal_boxes)
        object_feats = proposal_features
        losses: dict[str, torch.Tensor] = {}
        for stage in range(self.num_stages):
            results = self._sparse_forward(stage, x, proposal_list, object_feats, img_metas)
            proposal_list = results["detached"]
            cls_score = results["cls_score"]
            sampling_results = []
            for i, meta in enumerate(img_metas):
                assign = self.bbox_assigner[stage].assign(
                    bbox_xyxy_to_cxcywh(proposal_list[i] / whwh[i]),
                    cls_score[i].detach(),
                    gt_bboxes[i],
                    gt_labels[i],
                    meta,
                )
                sampling_results.append(
                    self.bbox_sampler[stage].sample(assign, proposal_list[i], gt_bboxes[i])
                )
            head = self.bbox_head[stage]
            targets = head.get_targets(
                sampling_results, gt_bboxes, gt_labels, self.train_cfg[stage]
            )
            stage_losses = head.loss(
                cls_score.view(-1, cls_score.size(-1)),
                results["decode_bbox_pred"].view(-1, 4),
                *targets,
                imgs_whwh=whwh,
            )
            if self.with_mask:
                stage_losses["loss_mask"] = self._sparse_mask_loss(
                    stage, x, results["attn_feats"], sampling_results, gt_masks
                )
            for name, value in stage_losses.items():
                losses[f"stage{stage}_{name}"] = value * self.stage_loss_weights[stage]
            object_feats = results["object_feats"]
        return losses

    def _sparse_mask_loss(
        self,
        stage: int,
        x: Sequence[torch.Tensor],
        attn_feats: torch.Tensor,
        sampling_results: Sequence[Any],
        gt_masks: Any,
    ) -> torch.Tensor:
        assert self.train_cfg is not None
        pos_rois = bbox2roi([res.pos_bboxes for res in sampling_results])
        pos_feats = torch.cat(
            [feats[res.pos_inds] for feats, res in zip(attn_feats, sampling_results, strict=True)]
        )
        mask_pred = self._sparse_mask_forward(stage, x, pos_rois, pos_feats)
        head = self.mask_head[stage]
        targets = head.get_targets(sampling_results, gt_masks, self.train_cfg[stage])
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        loss: torch.Tensor = head.loss(mask_pred, targets, pos_labels)["loss_mask"]
        return loss

    # ------------------------------------------------------------------ testing
    def simple_test(  # type: ignore[override]  # v2's Sparse R-CNN signature
        self,
        x: Sequence[torch.Tensor],
        proposal_boxes: torch.Tensor,
        proposal_features: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        imgs_whwh: torch.Tensor | None = None,
        rescale: bool = False,
    ) -> list[Any]:
        """v2 results per image (see the module docstring)."""
        num_classes = self.num_classes
        if proposal_boxes.size(1) == 0:
            empty = [np.zeros((0, 5), dtype=np.float32) for _ in range(num_classes)]
            return [list(empty) for _ in img_metas]
        proposal_list = list(proposal_boxes)
        object_feats = proposal_features
        for stage in range(self.num_stages):
            results = self._sparse_forward(stage, x, proposal_list, object_feats, img_metas)
            proposal_list, object_feats = results["detached"], results["object_feats"]
        cls_score = results["cls_score"]
        if self.bbox_head[-1].use_sigmoid:
            scores = cls_score.sigmoid()
        else:
            scores = cls_score.softmax(-1)[..., :-1]
        max_per_img = int((self.test_cfg or {}).get("max_per_img", 100))
        det_bboxes, det_labels, top_inds = [], [], []
        for i, meta in enumerate(img_metas):
            top_scores, inds = scores[i].flatten().topk(min(max_per_img, scores[i].numel()))
            boxes = proposal_list[i][inds // num_classes]
            if rescale:
                boxes = boxes / boxes.new_tensor(np.asarray(meta["scale_factor"], np.float32))
            det_bboxes.append(torch.cat([boxes, top_scores[:, None]], dim=1))
            det_labels.append(inds % num_classes)
            top_inds.append(inds)
        bbox_results = [
            bbox2result(b, lab, num_classes) for b, lab in zip(det_bboxes, det_labels, strict=True)
        ]
        if not self.with_mask:
            return bbox_results
        mask_pred = self._sparse_mask_forward(
            self.num_stages - 1, x, bbox2roi(proposal_list), results["attn_feats"].flatten(0, 1)
        )
        mask_pred = mask_pred.view(len(img_metas), -1, *mask_pred.shape[1:])
        segm_results = []
        for i, meta in enumerate(img_metas):
            boxes = det_bboxes[i][:, :4]
            if rescale:  # get_seg_masks divides by scale_factor itself
                boxes = boxes * boxes.new_tensor(np.asarray(meta["scale_factor"], np.float32))
            masks = mask_pred[i].flatten(0, 1)[top_inds[i]]
            masks = masks[:, None].repeat(1, num_classes, 1, 1)
            segm_results.append(
                self.mask_head[-1].get_seg_masks(
                    masks,
                    boxes,
                    det_labels[i],
                    self.test_cfg,
                    meta["ori_shape"],
                    meta["scale_factor"],
                    rescale,
                )
            )
        return list(zip(bbox_results, segm_results, strict=True))

    def simple_test_bboxes(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor],
        rcnn_test_cfg: Cfg | None,
        rescale: bool = False,
        ctx: Any = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Not available: the stages need the proposal features (use :meth:`simple_test`)."""
        raise NotImplementedError(
            "SparseRoIHead needs the proposal features: call simple_test(x, proposal_boxes, "
            "proposal_features, img_metas)"
        )

    def aug_test(
        self,
        x: Sequence[Sequence[torch.Tensor]],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[Any]:
        """Not supported (as in v2)."""
        raise NotImplementedError(
            "Sparse R-CNN and QueryInst do not support test-time augmentation"
        )
