"""``AnchorHead``: anchors, targets, losses and post-processing of anchor-based dense heads.

The numbers follow MMDetection v2.28 (``AnchorHead`` + ``BaseDenseHead``): anchors inside the
image (``allowed_border``) are assigned and sampled, targets are encoded by the box coder, the
classification loss is averaged over positives (plus negatives when sampling), and test-time
boxes are the ``nms_pre`` best (anchor, class) pairs per level above ``score_thr``, decoded,
optionally rescaled, then class-wise NMS and ``max_per_img``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.dense_heads.dense_test import (
    dense_forward_train,
    dense_get_bboxes,
    dense_get_bboxes_single,
    dense_simple_test,
)
from detforge.models.layers import apply_init_cfg
from detforge.models.utils import anchor_inside_flags, images_to_levels, multi_apply, unmap
from detforge.registry import MODELS, TASK_UTILS, build_module

__all__ = ["AnchorHead"]

Cfg = Mapping[str, Any]
_NO_SAMPLING_LOSSES = ("FocalLoss", "GHMC", "QualityFocalLoss")


@MODELS.register_module()
class AnchorHead(nn.Module):
    """Anchor-based dense head with one 1x1 conv each for scores and box deltas (v2).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each input feature map.
        feat_channels: Channels of the head's hidden convs (used by subclasses).
        anchor_generator: Prior generator config (``TASK_UTILS``).
        bbox_coder: Box coder config (``TASK_UTILS``).
        reg_decoded_bbox: Regress decoded boxes (for IoU-type losses) instead of deltas.
        loss_cls: Classification loss config; ``use_sigmoid`` selects sigmoid scores.
        loss_bbox: Regression loss config.
        train_cfg: ``assigner``, optional ``sampler``, ``allowed_border``, ``pos_weight``.
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img`` (``min_bbox_size``).
        init_cfg: Initialisation config.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        anchor_generator: Cfg | None = None,
        bbox_coder: Cfg | None = None,
        reg_decoded_bbox: bool = False,
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        anchor_generator = anchor_generator or dict(
            type="AnchorGenerator", scales=[8, 16, 32], ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64],
        )  # fmt: skip
        bbox_coder = bbox_coder or dict(
            type="DeltaXYWHBBoxCoder", clip_border=True, target_means=(0.0, 0.0, 0.0, 0.0),
            target_stds=(1.0, 1.0, 1.0, 1.0),
        )  # fmt: skip
        loss_cls = loss_cls or dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0)
        loss_bbox = loss_bbox or dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0)
        self.init_cfg = init_cfg if init_cfg is not None else dict(
            type="Normal", layer="Conv2d", std=0.01
        )  # fmt: skip
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.use_sigmoid_cls = bool(loss_cls.get("use_sigmoid", False))
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        if self.cls_out_channels <= 0:
            raise ValueError(f"num_classes={num_classes} is too small")
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = build_module(bbox_coder, TASK_UTILS)
        self.loss_cls = build_module(loss_cls, MODELS)
        self.loss_bbox = build_module(loss_bbox, MODELS)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.sampling = False
        if train_cfg:
            self.assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            sampler_cfg: Any = dict(type="PseudoSampler")
            sampler = train_cfg.get("sampler")
            # v2: focal-style losses never sample, even when the config names a sampler
            wants = sampler is not None and str(sampler["type"]).split(".")[-1] != "PseudoSampler"
            if wants and loss_cls["type"] not in _NO_SAMPLING_LOSSES:
                self.sampling = True
                sampler_cfg = sampler
            self.sampler = build_module(sampler_cfg, TASK_UTILS)
        self.prior_generator = build_module(anchor_generator, TASK_UTILS)
        self.num_base_priors = int(self.prior_generator.num_base_priors[0])
        self._init_layers()

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        self.conv_cls = nn.Conv2d(self.in_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = nn.Conv2d(self.in_channels, self.num_base_priors * 4, 1)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

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
        self, featmap_sizes: Sequence[Any], img_metas: Sequence[Cfg], device: Any = "cpu"
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        anchor_list = [anchors for _ in img_metas]
        valid_flag_list = [
            self.prior_generator.valid_flags(featmap_sizes, meta["pad_shape"], device)
            for meta in img_metas
        ]
        return anchor_list, valid_flag_list

    def _get_targets_single(
        self,
        flat_anchors: torch.Tensor,
        valid_flags: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None,
        gt_labels: torch.Tensor | None,
        img_meta: Cfg,
        label_channels: int = 1,
        unmap_outputs: bool = True,
    ) -> tuple[Any, ...]:
        assert self.train_cfg is not None
        inside = anchor_inside_flags(
            flat_anchors, valid_flags, img_meta["img_shape"][:2], self.train_cfg["allowed_border"]
        )
        if not inside.any():
            return (None,) * 7
        anchors = flat_anchors[inside, :]
        assign_result = self.assigner.assign(
            anchors, gt_bboxes, gt_bboxes_ignore, None if self.sampling else gt_labels
        )
        sampling_result = self.sampler.sample(assign_result, anchors, gt_bboxes)
        num_valid = anchors.shape[0]
        bbox_targets = torch.zeros_like(anchors)
        bbox_weights = torch.zeros_like(anchors)
        labels = anchors.new_full((num_valid,), self.num_classes, dtype=torch.long)
        label_weights = anchors.new_zeros(num_valid, dtype=torch.float)
        pos_inds = sampling_result.pos_inds
        neg_inds = sampling_result.neg_inds
        if len(pos_inds) > 0:
            if self.reg_decoded_bbox:
                pos_targets = sampling_result.pos_gt_bboxes
            else:
                pos_targets = self.bbox_coder.encode(
                    sampling_result.pos_bboxes, sampling_result.pos_gt_bboxes
                )
            bbox_targets[pos_inds, :] = pos_targets
            bbox_weights[pos_inds, :] = 1.0
            if gt_labels is None:  # the RPN: every foreground anchor is class 0
                labels[pos_inds] = 0
            else:
                labels[pos_inds] = gt_labels[sampling_result.pos_assigned_gt_inds]
            pos_weight = self.train_cfg["pos_weight"]
            label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
        if len(neg_inds) > 0:
            label_weights[neg_inds] = 1.0
        if unmap_outputs:
            total = flat_anchors.size(0)
            labels = unmap(labels, total, inside, fill=self.num_classes)
            label_weights = unmap(label_weights, total, inside)
            bbox_targets = unmap(bbox_targets, total, inside)
            bbox_weights = unmap(bbox_weights, total, inside)
        return (
            labels,
            label_weights,
            bbox_targets,
            bbox_weights,
            pos_inds,
            neg_inds,
            sampling_result,
        )

    def get_targets(
        self,
        anchor_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
        gt_labels_list: Sequence[torch.Tensor | None] | None = None,
        label_channels: int = 1,
        unmap_outputs: bool = True,
        return_sampling_results: bool = False,
    ) -> tuple[Any, ...] | None:
        """Per-level targets for a batch, and the positive/negative counts (v2)."""
        num_imgs = len(img_metas)
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        flat_anchors = [torch.cat(list(a)) for a in anchor_list]
        flat_valid = [torch.cat(list(v)) for v in valid_flag_list]
        ignores = list(gt_bboxes_ignore_list or [None] * num_imgs)
        labels_in = list(gt_labels_list or [None] * num_imgs)
        results = multi_apply(
            self._get_targets_single,
            flat_anchors,
            flat_valid,
            gt_bboxes_list,
            ignores,
            labels_in,
            img_metas,
            label_channels=label_channels,
            unmap_outputs=unmap_outputs,
        )
        labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds, sampling = results[
            :7
        ]
        if any(item is None for item in labels):
            return None
        num_total_pos = sum(max(inds.numel(), 1) for inds in pos_inds)
        num_total_neg = sum(max(inds.numel(), 1) for inds in neg_inds)
        out: tuple[Any, ...] = (
            images_to_levels(labels, num_level_anchors),
            images_to_levels(label_weights, num_level_anchors),
            images_to_levels(bbox_targets, num_level_anchors),
            images_to_levels(bbox_weights, num_level_anchors),
            num_total_pos,
            num_total_neg,
        )
        if return_sampling_results:
            out = (*out, sampling)
        return out

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

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[Cfg],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls`` and ``loss_bbox``, one tensor per level."""
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        if len(featmap_sizes) != self.prior_generator.num_levels:
            raise ValueError(
                f"{len(featmap_sizes)} feature levels for {self.prior_generator.num_levels} "
                "anchor levels"
            )
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, img_metas, device=device)
        label_channels = self.cls_out_channels if self.use_sigmoid_cls else 1
        targets = self.get_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes,
            img_metas,
            gt_bboxes_ignore_list=gt_bboxes_ignore,
            gt_labels_list=gt_labels,
            label_channels=label_channels,
        )
        if targets is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        labels, label_weights, bbox_targets, bbox_weights, num_pos, num_neg = targets
        num_total_samples = num_pos + num_neg if self.sampling else num_pos
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        all_anchors = images_to_levels([torch.cat(a) for a in anchor_list], num_level_anchors)
        losses_cls, losses_bbox = multi_apply(
            self.loss_single,
            cls_scores,
            bbox_preds,
            all_anchors,
            labels,
            label_weights,
            bbox_targets,
            bbox_weights,
            num_total_samples=num_total_samples,
        )
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)

    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None = None,
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
        proposal_cfg: Cfg | None = None,
    ) -> Any:
        """Losses, and with ``proposal_cfg`` also the (detached) proposals of each image."""
        return dense_forward_train(
            self, x, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, proposal_cfg
        )

    # --------------------------------------------------------------- inference
    def get_bboxes(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        score_factors: Sequence[torch.Tensor] | None = None,
        img_metas: Sequence[Cfg] | None = None,
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` (see :func:`dense_get_bboxes`)."""
        return dense_get_bboxes(
            self, cls_scores, bbox_preds, score_factors, img_metas, cfg, rescale, with_nms
        )

    def _get_bboxes_single(
        self,
        cls_score_list: Sequence[torch.Tensor],
        bbox_pred_list: Sequence[torch.Tensor],
        score_factor_list: Sequence[torch.Tensor | None],
        mlvl_priors: Sequence[torch.Tensor],
        img_meta: Cfg,
        cfg: Cfg | None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> Any:
        return dense_get_bboxes_single(
            self, cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta,
            cfg, rescale, with_nms,
        )  # fmt: skip

    def simple_test(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[Cfg], rescale: bool = False
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])``."""
        return dense_simple_test(self, feats, img_metas, rescale)
