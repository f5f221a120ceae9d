"""``HybridTaskCascadeRoIHead``: Hybrid Task Cascade's RoI head (v2).

A :class:`CascadeRoIHead` with one mask head per stage and three additions:

* **interleaved** execution: in training, stage ``i``'s mask head learns on the RoIs regressed
  by stage ``i``'s box head, assigned and sampled again with stage ``i``'s assigner and
  sampler (not on the RoIs the box head saw);
* **mask information flow**: stage ``i``'s mask head gets the features of stages ``0..i-1``
  (each ``HTCMaskHead`` adds the previous one's features through its ``conv_res``); at test
  time the heads run as one chain on the last stage's mask RoI features and their sigmoid
  masks are averaged;
* an optional **semantic branch** (``FusedSemanticHead``): its stride-8 embedding is pooled
  with ``semantic_roi_extractor`` and added to the box (``'bbox'`` in ``semantic_fusion``) and
  mask (``'mask'``) RoI features (average-pooled to their size when it differs); its loss
  ``loss_semantic_seg`` is the cross-entropy against ``gt_semantic_seg``.

Losses: ``loss_semantic_seg`` (with a semantic head), then per stage ``s{i}.loss_cls``,
``s{i}.acc``, ``s{i}.loss_bbox``, ``s{i}.loss_mask`` (losses times ``stage_loss_weights[i]``).
Each stage's proposals are the previous stage's sampled RoIs regressed by their target class
(negatives: the predicted class), ground-truth proposals dropped, as in Cascade R-CNN (v2's HTC
regresses negatives by the background column, which only class-agnostic regression allows;
every v2 HTC config is class-agnostic, where both are the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.base_roi_head import assign_and_sample
from detforge.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detforge.models.roi_heads.htc_heads import HTCMaskHead
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi

__all__ = ["HybridTaskCascadeRoIHead", "fuse_roi_context"]

_FUSIONS = ("bbox", "mask")


def fuse_roi_context(
    roi_feats: torch.Tensor,
    rois: torch.Tensor,
    semantic_feat: torch.Tensor | None,
    extractor: Any,
) -> torch.Tensor:
    """``roi_feats + extractor([semantic_feat], rois)``, the pooled semantic features
    average-pooled to ``roi_feats``' size when it differs (HTC, SCNet); ``roi_feats`` as they
    are without ``semantic_feat``."""
    if semantic_feat is None:
        return roi_feats
    pooled = extractor([semantic_feat], rois)
    if pooled.shape[-2:] != roi_feats.shape[-2:]:
        pooled = F.adaptive_avg_pool2d(pooled, (roi_feats.shape[-2], roi_feats.shape[-1]))
    return roi_feats + pooled


def build_semantic_branch(
    owner: str, semantic_roi_extractor: Cfg | None, semantic_head: Cfg | None
) -> tuple[Any, Any]:
    """The semantic RoI extractor and head (both or neither).

    Raises:
        ValueError: only one of them is configured.
    """
    if (semantic_roi_extractor is None) != (semantic_head is None):
        raise InvalidArgumentError(
            f"{owner}: semantic_head and semantic_roi_extractor must be given together"
        )
    if semantic_head is None:
        return None, None
    return build_module(semantic_roi_extractor, MODELS), build_module(semantic_head, MODELS)


@MODELS.register_module()
class HybridTaskCascadeRoIHead(CascadeRoIHead):
    """HTC's RoI head (``mmdet.models.roi_heads.HybridTaskCascadeRoIHead``, v2).

    Args:
        num_stages: Number of stages.
        stage_loss_weights: Multiplier of each stage's losses.
        semantic_roi_extractor: Pools the semantic embedding (``featmap_strides=[8]``).
        semantic_head: ``FusedSemanticHead`` config, or ``None`` for HTC without semantics.
        semantic_fusion: Where the pooled semantic features are added: ``'bbox'``, ``'mask'``.
        interleaved: Train each stage's mask head on the RoIs its box head regressed.
        mask_info_flow: Chain the mask heads (``HTCMaskHead`` with ``conv_res``).
        **kwargs: :class:`CascadeRoIHead`'s arguments (``bbox_roi_extractor``, ``bbox_head``,
            ``mask_roi_extractor``, ``mask_head``, ``train_cfg``, ``test_cfg``, ...).
    """

    def __init__(
        self,
        num_stages: int,
        stage_loss_weights: Sequence[float],
        semantic_roi_extractor: Cfg | None = None,
        semantic_head: Cfg | None = None,
        semantic_fusion: Sequence[str] = _FUSIONS,
        interleaved: bool = True,
        mask_info_flow: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_stages=num_stages, stage_loss_weights=stage_loss_weights, **kwargs)
        name = type(self).__name__
        unknown = sorted(set(semantic_fusion) - set(_FUSIONS))
        if unknown:
            raise InvalidArgumentError(f"{name}: semantic_fusion {unknown} not in {list(_FUSIONS)}")
        self.semantic_roi_extractor, self.semantic_head = build_semantic_branch(
            name, semantic_roi_extractor, semantic_head
        )
        self.semantic_fusion = tuple(semantic_fusion)
        self.interleaved = interleaved
        self.mask_info_flow = mask_info_flow
        if self.with_mask and mask_info_flow:
            for i, head in enumerate(self.mask_head):
                if not isinstance(head, HTCMaskHead) or (i > 0 and not head.with_conv_res):
                    raise InvalidArgumentError(
                        f"{name}: mask_info_flow needs HTCMaskHeads, those after the first with "
                        f"with_conv_res=True; mask_head[{i}] is {type(head).__name__}"
                        + ("(with_conv_res=False)" if isinstance(head, HTCMaskHead) else "")
                    )

    @property
    def with_semantic(self) -> bool:
        return self.semantic_head is not None

    # ------------------------------------------------------------------ forward
    def _image_context(self, x: Sequence[torch.Tensor]) -> torch.Tensor | None:
        """The semantic embedding ``[B, C, H/8, W/8]`` (``None`` without a semantic head)."""
        if self.semantic_head is None:
            return None
        semantic_feat: torch.Tensor = self.semantic_head(x)[1]
        return semantic_feat

    def _fuse(
        self, kind: str, roi_feats: torch.Tensor, rois: torch.Tensor, ctx: torch.Tensor | None
    ) -> torch.Tensor:
        if kind not in self.semantic_fusion:
            return roi_feats
        return fuse_roi_context(roi_feats, rois, ctx, self.semantic_roi_extractor)

    def _bbox_forward(
        self, stage: int, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any = None
    ) -> dict[str, Any]:
        extractor = self.bbox_roi_extractor[stage]
        bbox_feats = self._fuse("bbox", extractor(x[: extractor.num_inputs], rois), rois, ctx)
        cls_score, bbox_pred = self.bbox_head[stage](bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_feats(
        self, stage: int, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any
    ) -> torch.Tensor:
        extractor = self.mask_roi_extractor[stage]
        return self._fuse("mask", extractor(x[: extractor.num_inputs], rois), rois, ctx)

    def _mask_logits(
        self, stage: int, mask_feats: torch.Tensor, last_feat: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stage ``stage``'s logits and (with the information flow) its features."""
        head = self.mask_head[stage]
        if self.mask_info_flow:
            logits, feat = head(mask_feats, last_feat)
            return logits, feat
        if isinstance(head, HTCMaskHead):
            return head(mask_feats, return_feat=False), None
        return head(mask_feats), None

    def _stage_mask_logits(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any = None
    ) -> list[torch.Tensor]:
        """Every stage's mask logits, the heads chained on the last stage's RoI features."""
        mask_feats = self._mask_feats(self.num_stages - 1, x, rois, ctx)
        outs, last_feat = [], None
        for i in range(self.num_stages):
            logits, last_feat = self._mask_logits(i, mask_feats, last_feat)
            outs.append(logits)
        return outs

    # ----------------------------------------------------------------- training
    def _htc_mask_forward_train(
        self,
        stage: int,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_masks: Sequence[Any],
        rcnn_train_cfg: Cfg,
        ctx: Any,
    ) -> dict[str, torch.Tensor]:
        pos_rois = bbox2roi([res.pos_bboxes for res in sampling_results])
        mask_feats = self._mask_feats(stage, x, pos_rois, ctx)
        last_feat = None
        if self.mask_info_flow:
            for i in range(stage):
                last_feat = self.mask_head[i](mask_feats, last_feat, return_logits=False)
        logits = self._mask_logits(stage, mask_feats, last_feat)[0]
        head = self.mask_head[stage]
        targets = head.get_targets(sampling_results, gt_masks, rcnn_train_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        loss_mask: dict[str, torch.Tensor] = head.loss(logits, targets, pos_labels)
        return loss_mask

    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
        gt_masks: Any = None,
        gt_semantic_seg: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_semantic_seg`` (with a semantic head) and the per-stage losses (see the
        module docstring).

        Raises:
            RuntimeError: no ``train_cfg``.
            ValueError: ``gt_masks`` or ``gt_semantic_seg`` missing for the heads that need them.
        """
        name = type(self).__name__
        if self.train_cfg is None:
            raise RuntimeError(f"{name}.forward_train needs train_cfg (one per stage)")
        if self.with_mask and gt_masks is None:
            raise InvalidArgumentError(f"{name}.forward_train: the mask heads need gt_masks")
        losses: dict[str, torch.Tensor] = {}
        ctx = None
        if self.semantic_head is not None:
            if gt_semantic_seg is None:
                raise InvalidArgumentError(
                    f"{name}.forward_train: the semantic head needs gt_semantic_seg "
                    "(LoadAnnotations(with_seg=True) and Collect it)"
                )
            semantic_pred, ctx = self.semantic_head(x)
            losses["loss_semantic_seg"] = self.semantic_head.loss(semantic_pred, gt_semantic_seg)
        proposals = list(proposal_list)
        last = self.num_stages - 1
        for i in range(self.num_stages):
            weight, stage_cfg = self.stage_loss_weights[i], self.train_cfg[i]
            sample = (self.bbox_assigner[i], self.bbox_sampler[i], x)
            truth = (gt_bboxes, gt_labels, gt_bboxes_ignore)
            sampling_results = assign_and_sample(*sample, proposals, *truth)
            bbox_results = self._bbox_forward_train(
                i, x, sampling_results, gt_bboxes, gt_labels, stage_cfg, ctx
            )
            stage_losses = dict(bbox_results["loss_bbox"])
            refined = None
            if i < last or (self.interleaved and self.with_mask):
                refined = self._next_proposals(i, bbox_results, sampling_results, img_metas)
            if self.with_mask:
                if self.interleaved and refined is not None:
                    sampling_results = assign_and_sample(*sample, refined, *truth)
                stage_losses.update(
                    self._htc_mask_forward_train(i, x, sampling_results, gt_masks, stage_cfg, ctx)
                )
            for key, value in stage_losses.items():
                losses[f"s{i}.{key}"] = value * weight if "loss" in key else value
            if i < last:
                if refined is None:  # no RoI in the whole batch
                    break
                proposals = refined
        return losses
