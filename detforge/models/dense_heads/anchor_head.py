"""``AnchorHead``: anchors, targets and losses of anchor-based dense heads.

The numbers follow MMDetection v2.28's ``AnchorHead``: anchors inside the image
(``allowed_border``) are assigned and sampled (:func:`anchor_targets`), targets are encoded by
the box coder, and the classification loss is averaged over the positives (plus the sampled
negatives when sampling). Post-processing is :class:`BaseDenseHead`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_targets import AnchorTargets, anchor_targets
from detforge.models.dense_heads.base_dense_head import SIGMOID_BCE, BaseDenseHead
from detforge.models.losses import GHMC, FocalLoss, QualityFocalLoss
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["AnchorHead"]

# v2: heads trained with these losses never sample, even when the config names a sampler
_SAMPLING_FREE_LOSSES: tuple[type[nn.Module], ...] = (FocalLoss, GHMC, QualityFocalLoss)

_ANCHORS: Cfg = MappingProxyType(
    dict(
        type="AnchorGenerator",
        scales=[8, 16, 32],
        ratios=[0.5, 1.0, 2.0],
        strides=[4, 8, 16, 32, 64],
    )
)
_DELTAS: Cfg = MappingProxyType(
    dict(
        type="DeltaXYWHBBoxCoder",
        clip_border=True,
        target_means=(0.0, 0.0, 0.0, 0.0),
        target_stds=(1.0, 1.0, 1.0, 1.0),
    )
)
_SMOOTH_L1: Cfg = MappingProxyType(dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0))
_NORMAL_INIT: Cfg = MappingProxyType(dict(type="Normal", layer="Conv2d", std=0.01))
_PSEUDO: Cfg = MappingProxyType(dict(type="PseudoSampler"))


@MODELS.register_module()
class AnchorHead(BaseDenseHead):
    """Anchor-based dense head with one 1x1 conv each for scores and box deltas (v2).

    Takes :class:`BaseDenseHead`'s arguments (default losses: sigmoid cross-entropy and
    smooth L1 with beta 1/9; coder: ``DeltaXYWHBBoxCoder``; ``init_cfg``: Normal(std=0.01) for
    every ``Conv2d``) plus:

    Args:
        anchor_generator: Prior generator (config or object, ``TASK_UTILS``).
        reg_decoded_bbox: Regress decoded boxes (for IoU-type losses) instead of deltas.

    ``train_cfg`` holds the ``assigner``, an optional ``sampler`` (ignored, as in v2, with
    focal-type losses), ``allowed_border`` and ``pos_weight``. Subclasses take these arguments
    through ``**kwargs`` and add their own; the registry checks a config's keys against the
    whole chain.
    """

    #: label weights per (anchor, class) instead of per anchor (see :func:`anchor_targets`)
    per_class_label_weights = False

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        anchor_generator: Cfg | object = _ANCHORS,
        bbox_coder: Cfg | object = _DELTAS,
        reg_decoded_bbox: bool = False,
        loss_cls: Cfg | nn.Module = SIGMOID_BCE,
        loss_bbox: Cfg | nn.Module = _SMOOTH_L1,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            bbox_coder=bbox_coder,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=_NORMAL_INIT if init_cfg is None else init_cfg,
        )
        self.reg_decoded_bbox = reg_decoded_bbox
        self.sampling = False
        if train_cfg:
            self.assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            sampler = build_module(train_cfg.get("sampler", _PSEUDO), TASK_UTILS)
            if not isinstance(sampler, PseudoSampler) and not isinstance(
                self.loss_cls, _SAMPLING_FREE_LOSSES
            ):
                self.sampling = True
            else:
                sampler = PseudoSampler()
            self.sampler = sampler
        self.prior_generator = build_module(anchor_generator, TASK_UTILS)
        self.num_base_priors = int(self.prior_generator.num_base_priors[0])
        self._init_layers()

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        self.conv_cls = nn.Conv2d(self.in_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = nn.Conv2d(self.in_channels, self.num_base_priors * 4, 1)

    @property
    def anchor_generator(self) -> Any:
        """v2's old name of :attr:`prior_generator`."""
        return self.prior_generator

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv_cls(x), self.conv_reg(x)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: ``cls_score [B, A*C, H, W]`` and ``bbox_pred [B, A*4, H, W]``."""
        return multi_apply(self.forward_single, feats)

    # ---------------------------------------------------------------- targets
    def get_anchors(
        self, featmap_sizes: Sequence[Any], img_metas: Sequence[ImgMeta], device: Any = "cpu"
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        anchor_list = [anchors for _ in img_metas]
        valid_flag_list = [
            self.prior_generator.valid_flags(featmap_sizes, meta["pad_shape"], device)
            for meta in img_metas
        ]
        return anchor_list, valid_flag_list

    def _targets(
        self,
        anchor_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None,
        gt_labels_list: Sequence[torch.Tensor | None] | None,
        unmap_outputs: bool = True,
    ) -> AnchorTargets | None:
        if self.train_cfg is None:
            raise InvalidArgumentError(f"{type(self).__name__} needs a train_cfg for its targets")
        return anchor_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes_list,
            img_metas,
            assigner=self.assigner,
            sampler=self.sampler,
            num_classes=self.num_classes,
            train_cfg=self.train_cfg,
            assign_labels=not self.sampling,
            gt_bboxes_ignore_list=gt_bboxes_ignore_list,
            gt_labels_list=gt_labels_list,
            unmap_outputs=unmap_outputs,
            encode=None if self.reg_decoded_bbox else self.bbox_coder.encode,
            per_class_weights=self.per_class_label_weights,
        )

    def get_targets(
        self,
        anchor_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
        gt_labels_list: Sequence[torch.Tensor | None] | None = None,
        label_channels: int = 1,
        unmap_outputs: bool = True,
        return_sampling_results: bool = False,
    ) -> tuple[Any, ...] | None:
        """v2's per-level ``(labels, label_weights, bbox_targets, bbox_weights)`` and the
        positive/negative counts, plus the sampling results if asked (see
        :func:`anchor_targets`; ``label_channels`` is accepted for v2 compatibility)."""
        t = self._targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes_list,
            img_metas,
            gt_bboxes_ignore_list,
            gt_labels_list,
            unmap_outputs,
        )
        if t is None:
            return None
        counts = (t.num_total_pos, t.num_total_neg)
        out = (t.labels, t.label_weights, t.bbox_targets, t.bbox_weights, *counts)
        return (*out, t.sampling_results) if return_sampling_results else out

    # ------------------------------------------------------------------ losses
    def loss_single(
        self,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        anchors: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        bbox_weights: torch.Tensor,
        num_total_samples: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=num_total_samples)
        bbox_targets = bbox_targets.reshape(-1, 4)
        bbox_weights = bbox_weights.reshape(-1, 4)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.reshape(-1, 4), bbox_pred)
        loss_bbox = self.loss_bbox(
            bbox_pred, bbox_targets, bbox_weights, avg_factor=num_total_samples
        )
        return loss_cls, loss_bbox

    def _anchor_targets(
        self,
        cls_scores: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None,
    ) -> AnchorTargets:
        """The loss preamble of anchor heads: the batch's anchors and their targets.

        Raises:
            ValueError: the score maps have another number of levels than the anchors.
            RuntimeError: an image has no anchor inside it.
        """
        featmap_sizes = self._featmap_sizes(cls_scores)
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, img_metas, device=cls_scores[0].device
        )
        targets = self._targets(
            anchor_list, valid_flag_list, gt_bboxes, img_metas, gt_bboxes_ignore, gt_labels
        )
        if targets is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        return targets

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls`` and ``loss_bbox``, one tensor per level, averaged over the positives
        (and the sampled negatives when sampling)."""
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        num_total_samples = t.num_total_pos + (t.num_total_neg if self.sampling else 0)
        losses_cls, losses_bbox = multi_apply(
            self.loss_single,
            cls_scores,
            bbox_preds,
            t.anchors,
            t.labels,
            t.label_weights,
            t.bbox_targets,
            t.bbox_weights,
            num_total_samples=num_total_samples,
        )
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)
