"""``SCNetRoIHead``: the RoI head of SCNet, the sample consistency network (v2).

A box cascade (:class:`CascadeRoIHead` stages of ``SCNetBBoxHead``) followed by **one** mask
head that runs after the last stage, on that stage's positive RoIs in training and on the
final detections at test time (the same boxes in both: "sample consistency"). The mask RoI
features are summed with

* the pooled semantic embedding (``SCNetSemanticHead``, trained on ``gt_semantic_seg``:
  ``loss_semantic_seg``), also added to every stage's box RoI features;
* the image's global context (``GlobalContextHead``, trained to predict which classes the
  image contains: ``loss_glbctx``), also added to the box RoI features;
* the relayed features: the last box head's shared fc features of the same RoIs through the
  ``FeatureRelayHead``.

Losses: ``loss_semantic_seg``, ``loss_glbctx``, per stage ``s{i}.loss_cls``, ``s{i}.acc``,
``s{i}.loss_bbox`` (times ``stage_loss_weights[i]``), and ``loss_mask`` times the sum of the
stage weights. Stage proposals are refined as in :class:`HybridTaskCascadeRoIHead`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.base_roi_head import assign_and_sample, positive_flags
from detforge.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detforge.models.roi_heads.htc_roi_head import build_semantic_branch, fuse_roi_context
from detforge.models.roi_heads.scnet_heads import SCNetBBoxHead
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi

__all__ = ["SCNetRoIHead"]

_Context = tuple[torch.Tensor | None, torch.Tensor | None]


@MODELS.register_module()
class SCNetRoIHead(CascadeRoIHead):
    """SCNet's RoI head (``mmdet.models.roi_heads.SCNetRoIHead``, v2).

    State-dict keys: ``bbox_head.{i}.*``, ``mask_head.*`` (one head), ``semantic_head.*``,
    ``glbctx_head.*``, ``feat_relay_head.*``.

    Args:
        num_stages: Number of box stages.
        stage_loss_weights: Multiplier of each stage's losses.
        mask_roi_extractor: The mask head's RoI extractor (required).
        mask_head: One ``SCNetMaskHead`` config (required).
        semantic_roi_extractor: Pools the semantic embedding.
        semantic_head: ``SCNetSemanticHead`` config, or ``None``.
        feat_relay_head: ``FeatureRelayHead`` config, or ``None``.
        glbctx_head: ``GlobalContextHead`` config, or ``None``.
        **kwargs: :class:`CascadeRoIHead`'s other arguments (``bbox_roi_extractor``,
            ``bbox_head`` — ``SCNetBBoxHead``s —, ``train_cfg``, ``test_cfg``, ...).

    Raises:
        ValueError: the mask branch is missing, or a box head is not an ``SCNetBBoxHead``.
    """

    def __init__(
        self,
        num_stages: int,
        stage_loss_weights: Sequence[float],
        mask_roi_extractor: Cfg | None = None,
        mask_head: Cfg | None = None,
        semantic_roi_extractor: Cfg | None = None,
        semantic_head: Cfg | None = None,
        feat_relay_head: Cfg | None = None,
        glbctx_head: Cfg | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_stages=num_stages, stage_loss_weights=stage_loss_weights, **kwargs)
        name = type(self).__name__
        if mask_roi_extractor is None or mask_head is None:
            raise InvalidArgumentError(f"{name} needs mask_roi_extractor and mask_head")
        for i, head in enumerate(self.bbox_head):
            if not isinstance(head, SCNetBBoxHead):
                raise InvalidArgumentError(
                    f"{name}: bbox_head[{i}] must be an SCNetBBoxHead, got {type(head).__name__}"
                )
        self.mask_roi_extractor = build_module(mask_roi_extractor, MODELS)
        self.mask_head = build_module(mask_head, MODELS)
        self.semantic_roi_extractor, self.semantic_head = build_semantic_branch(
            name, semantic_roi_extractor, semantic_head
        )
        self.feat_relay_head = (
            None if feat_relay_head is None else build_module(feat_relay_head, MODELS)
        )
        self.glbctx_head = None if glbctx_head is None else build_module(glbctx_head, MODELS)

    @property
    def with_semantic(self) -> bool:
        return self.semantic_head is not None

    @property
    def with_feat_relay(self) -> bool:
        return self.feat_relay_head is not None

    @property
    def with_glbctx(self) -> bool:
        return self.glbctx_head is not None

    @property
    def _paste_head(self) -> Any:
        return self.mask_head

    # ------------------------------------------------------------------ forward
    def _image_context(self, x: Sequence[torch.Tensor]) -> _Context:
        """``(semantic embedding, global context [B, C, 1, 1])``, each ``None`` without its
        head."""
        semantic = None if self.semantic_head is None else self.semantic_head(x)[1]
        glbctx = None if self.glbctx_head is None else self.glbctx_head(x)[1]
        return semantic, glbctx

    def _fuse(self, roi_feats: torch.Tensor, rois: torch.Tensor, ctx: Any) -> torch.Tensor:
        semantic, glbctx = ctx if ctx is not None else (None, None)
        roi_feats = fuse_roi_context(roi_feats, rois, semantic, self.semantic_roi_extractor)
        if glbctx is not None:
            roi_feats = roi_feats + glbctx[rois[:, 0].long()]
        return roi_feats

    def _bbox_forward(
        self, stage: int, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any = None
    ) -> dict[str, Any]:
        extractor = self.bbox_roi_extractor[stage]
        bbox_feats = self._fuse(extractor(x[: extractor.num_inputs], rois), rois, ctx)
        cls_score, bbox_pred, relayed_feat = self.bbox_head[stage](
            bbox_feats, return_shared_feat=True
        )
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, relayed_feat=relayed_feat)

    def _scnet_mask_logits(
        self,
        x: Sequence[torch.Tensor],
        rois: torch.Tensor,
        ctx: Any,
        relayed_feat: torch.Tensor | None,
    ) -> torch.Tensor:
        extractor = self.mask_roi_extractor
        mask_feats = self._fuse(extractor(x[: extractor.num_inputs], rois), rois, ctx)
        if relayed_feat is not None:
            mask_feats = mask_feats + relayed_feat
        logits: torch.Tensor = self.mask_head(mask_feats)
        return logits

    def _relay(self, shared_feats: torch.Tensor) -> torch.Tensor | None:
        if self.feat_relay_head is None:
            return None
        relayed: torch.Tensor | None = self.feat_relay_head(shared_feats)
        return relayed

    def _stage_mask_logits(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor, ctx: Any = None
    ) -> list[torch.Tensor]:
        """The one mask head's logits, with the last box head's relayed features."""
        relayed = None
        if self.feat_relay_head is not None:
            shared = self._bbox_forward(self.num_stages - 1, x, rois, ctx)["relayed_feat"]
            relayed = self._relay(shared)
        return [self._scnet_mask_logits(x, rois, ctx, relayed)]

    # ----------------------------------------------------------------- training
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
        """The losses of the module docstring.

        Raises:
            RuntimeError: no ``train_cfg``.
            ValueError: ``gt_masks`` (or, with a semantic head, ``gt_semantic_seg``) missing.
        """
        name = type(self).__name__
        if self.train_cfg is None:
            raise RuntimeError(f"{name}.forward_train needs train_cfg (one per stage)")
        if gt_masks is None:
            raise InvalidArgumentError(f"{name}.forward_train: the mask head needs gt_masks")
        losses: dict[str, torch.Tensor] = {}
        semantic = glbctx = None
        if self.semantic_head is not None:
            if gt_semantic_seg is None:
                raise InvalidArgumentError(
                    f"{name}.forward_train: the semantic head needs gt_semantic_seg "
                    "(LoadAnnotations(with_seg=True) and Collect it)"
                )
            semantic_pred, semantic = self.semantic_head(x)
            losses["loss_semantic_seg"] = self.semantic_head.loss(semantic_pred, gt_semantic_seg)
        if self.glbctx_head is not None:
            glbctx_pred, glbctx = self.glbctx_head(x)
            losses["loss_glbctx"] = self.glbctx_head.loss(glbctx_pred, gt_labels)
        ctx = (semantic, glbctx)
        proposals = list(proposal_list)
        for i in range(self.num_stages):
            stage_cfg = self.train_cfg[i]
            sampling_results = assign_and_sample(
                self.bbox_assigner[i],
                self.bbox_sampler[i],
                x,
                proposals,
                gt_bboxes,
                gt_labels,
                gt_bboxes_ignore,
            )
            bbox_results = self._bbox_forward_train(
                i, x, sampling_results, gt_bboxes, gt_labels, stage_cfg, ctx
            )
            for key, value in bbox_results["loss_bbox"].items():
                weight = self.stage_loss_weights[i]
                losses[f"s{i}.{key}"] = value * weight if "loss" in key else value
            if i < self.num_stages - 1:
                refined = self._next_proposals(i, bbox_results, sampling_results, img_metas)
                if refined is None:  # no RoI in the whole batch
                    break
                proposals = refined
        shared = bbox_results["relayed_feat"]
        relayed = self._relay(shared[positive_flags(sampling_results, shared.device)])
        pos_rois = bbox2roi([res.pos_bboxes for res in sampling_results])
        logits = self._scnet_mask_logits(x, pos_rois, ctx, relayed)
        targets = self.mask_head.get_targets(sampling_results, gt_masks, stage_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        loss_mask = self.mask_head.loss(logits, targets, pos_labels)["loss_mask"]
        losses["loss_mask"] = sum(self.stage_loss_weights) * loss_mask
        return losses
