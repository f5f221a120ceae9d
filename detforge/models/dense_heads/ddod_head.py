"""``DDODHead``: Disentangled Dense Object Detector (Chen et al. 2021), MMDetection v2.28 numerics.

ATSS's layout (one square anchor per cell, GN towers, a per-level :class:`Scale` on the deltas)
with a deformable first conv in each tower and an IoU branch (``atss_iou``) on the regression
tower. Classification and regression get separate assignments: the cost-based
:class:`ATSSAssigner` with ``train_cfg.assigner`` (classification) and
``train_cfg.reg_assigner`` (regression), both ranking candidates by
``sigmoid(score) ** (1 - alpha) * IoU(decoded prediction) ** alpha``.

Losses, per level: the focal loss over the classification assignment's positives; GIoU between
the decoded predictions and the decoded (encoded, then decoded, as in v2) targets of the
regression assignment, and the BCE of ``atss_iou`` against the IoU of each positive's detached
prediction with its target; each averaged over the (all-reduced, at least 1) positives of its
assignment and multiplied by a level factor from 2 (the level with the fewest positives) down to
1 (the most). The factors come from running per-level positive counts kept on the head over the
whole training and, as in v2, one counter set serves both assignments (the regression factors see
the classification counts too).

Test: ATSS's post-processing with ``sigmoid(atss_iou)`` as the score factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.anchor_targets import AnchorTargets, anchor_targets
from detforge.models.dense_heads.base_dense_head import GN32, SIGMOID_BCE
from detforge.models.layers import ConvModule
from detforge.models.layers.scale import Scale
from detforge.models.layers.weight_init import bias_init_with_prob, normal_init
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_overlaps

__all__ = ["DDODHead", "level_reweight_factors"]


def level_reweight_factors(counts: Sequence[float]) -> list[float]:
    """Per level ``2 - (count - min) / (max - min + 1e-10)``: 2 for the level with the fewest
    positives, 1 for the most.

    Example:
        >>> [round(f, 3) for f in level_reweight_factors([10, 30, 20])]
        [2.0, 1.0, 1.5]
    """
    low, high = min(counts), max(counts)
    interval = 1.0 / (high - low + 1e-10)
    return [2.0 - (count - low) * interval for count in counts]


@MODELS.register_module()
class DDODHead(AnchorHead):
    """DDOD head (see the module docstring).

    Takes :class:`AnchorHead`'s arguments plus:

    Args:
        stacked_convs: 3x3 ConvModules per tower.
        conv_cfg: Conv layer config of the towers (but the first with ``use_dcn``).
        use_dcn: Make the first conv of each tower a deformable conv (``DCN``, one offset
            group); without it the towers are ATSS's.
        norm_cfg: Norm layer config of the towers (default GN, 32 groups).
        loss_iou: Loss of the IoU branch (default sigmoid BCE).

    ``train_cfg`` also holds ``reg_assigner``. ``init_cfg`` is not used (v2's fixed
    initialisation: N(0, 0.01) convs, the 0.01 prior as the score bias).
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = AnchorHead.TRAIN_CFG_KEYS | {"reg_assigner"}

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        stacked_convs: int = 4,
        conv_cfg: Cfg | None = None,
        use_dcn: bool = True,
        norm_cfg: Cfg | None = GN32,
        loss_iou: Cfg | nn.Module = SIGMOID_BCE,
        **kwargs: Any,
    ) -> None:
        self.stacked_convs = stacked_convs
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.use_dcn = use_dcn
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.sampling = False
        if self.train_cfg:
            assert self.train_cfg is not None
            self.cls_assigner = self.assigner
            self.reg_assigner = build_module(self.train_cfg["reg_assigner"], TASK_UTILS)
            self.sampler = PseudoSampler()
        self.loss_iou = build_module(loss_iou, MODELS)

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        a = self.num_base_priors
        self.atss_cls = nn.Conv2d(self.feat_channels, a * self.cls_out_channels, 3, padding=1)
        self.atss_reg = nn.Conv2d(self.feat_channels, a * 4, 3, padding=1)
        self.atss_iou = nn.Conv2d(self.feat_channels, a, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])
        num_levels = len(self.prior_generator.strides)
        #: running positive counts per level (v2: one set for both assignments)
        self.cls_num_pos_samples_per_level = [0.0] * num_levels
        self.reg_num_pos_samples_per_level = [0.0] * num_levels

    def _tower(self) -> nn.ModuleList:
        return nn.ModuleList(
            ConvModule(
                self.in_channels if i == 0 else self.feat_channels,
                self.feat_channels,
                3,
                padding=1,
                conv_cfg=dict(type="DCN", deform_groups=1)
                if i == 0 and self.use_dcn
                else self.conv_cfg,
                norm_cfg=self.norm_cfg,
            )
            for i in range(self.stacked_convs)
        )

    def init_weights(self) -> None:
        for m in [*self.cls_convs, *self.reg_convs]:
            normal_init(m.conv, std=0.01)
        normal_init(self.atss_reg, std=0.01)
        normal_init(self.atss_iou, std=0.01)
        normal_init(self.atss_cls, std=0.01, bias=bias_init_with_prob(0.01))

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, A*C, H, W]``, ``bbox_pred [B, A*4, H, W]`` and
        ``iou_pred [B, A, H, W]`` (logits)."""
        return multi_apply(self.forward_single, feats, list(self.scales))

    def forward_single(  # type: ignore[override]  # v2's signature: the level's Scale
        self, x: torch.Tensor, scale: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        bbox_pred = scale(self.atss_reg(reg_feat)).float()
        return self.atss_cls(cls_feat), bbox_pred, self.atss_iou(reg_feat)

    # ------------------------------------------------------------------ losses
    def calc_reweight_factor(self, labels_list: Sequence[torch.Tensor]) -> list[float]:
        """Add the positives of ``labels_list`` (per level) to the running counts and return
        the level factors (see :func:`level_reweight_factors`)."""
        for level, labels in enumerate(labels_list):
            pos = (labels >= 0) & (labels < self.num_classes)
            self.cls_num_pos_samples_per_level[level] += int(pos.sum())
        return level_reweight_factors(self.cls_num_pos_samples_per_level)

    def _ddod_targets(
        self,
        assigner: Any,
        anchor_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        predictions: Sequence[tuple[torch.Tensor, torch.Tensor]],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None,
    ) -> AnchorTargets:
        assert self.train_cfg is not None
        targets = anchor_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes,
            img_metas,
            assigner=assigner,
            sampler=self.sampler,
            num_classes=self.num_classes,
            train_cfg=self.train_cfg,
            gt_bboxes_ignore_list=gt_bboxes_ignore,
            gt_labels_list=gt_labels,
            encode=self.bbox_coder.encode,
            predictions=predictions,
        )
        if targets is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        return targets

    def loss_reg_single(
        self,
        anchors: torch.Tensor,
        bbox_pred: torch.Tensor,
        iou_pred: torch.Tensor,
        labels: torch.Tensor,
        bbox_targets: torch.Tensor,
        bbox_weights: torch.Tensor,
        reweight_factor: float,
        num_total_samples: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One level's weighted ``(loss_bbox, loss_iou)``."""
        anchors = anchors.reshape(-1, 4)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        iou_pred = iou_pred.permute(0, 2, 3, 1).reshape(-1)
        bbox_targets = bbox_targets.reshape(-1, 4)
        labels = labels.reshape(-1)
        iou_targets = iou_pred.new_zeros(labels.shape)
        iou_weights = (bbox_weights.reshape(-1, 4).sum(dim=1) > 0).to(iou_pred.dtype)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if len(pos) == 0:
            return bbox_pred.sum() * 0, iou_pred.sum() * 0
        pos_decoded = self.bbox_coder.decode(anchors[pos], bbox_pred[pos])
        pos_targets = self.bbox_coder.decode(anchors[pos], bbox_targets[pos])
        loss_bbox = self.loss_bbox(pos_decoded, pos_targets, avg_factor=num_total_samples)
        iou_targets[pos] = bbox_overlaps(pos_decoded.detach(), pos_targets, is_aligned=True)
        loss_iou = self.loss_iou(iou_pred, iou_targets, iou_weights, avg_factor=num_total_samples)
        return reweight_factor * loss_bbox, reweight_factor * loss_iou

    def loss(  # type: ignore[override]  # v2's signature: the IoU maps third
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        iou_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox`` and ``loss_iou``, one tensor per level.

        Raises:
            ValueError: ``gt_labels`` or the train_cfg is missing.
        """
        if gt_labels is None or not self.train_cfg:
            raise InvalidArgumentError("DDODHead needs gt_labels and a train_cfg for its losses")
        featmap_sizes = self._featmap_sizes(cls_scores)
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, img_metas, device=device)
        b = len(img_metas)
        flat_scores = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(b, -1, self.cls_out_channels) for s in cls_scores], 1
        )
        flat_deltas = torch.cat([p.permute(0, 2, 3, 1).reshape(b, -1, 4) for p in bbox_preds], 1)
        anchors = [torch.cat(list(per_image)) for per_image in anchor_list]
        predictions = [
            (scores.detach(), self.bbox_coder.decode(a, deltas.detach()))
            for scores, a, deltas in zip(flat_scores, anchors, flat_deltas, strict=True)
        ]
        args = (anchor_list, valid_flag_list, predictions, gt_bboxes, gt_labels, img_metas)
        cls_t = self._ddod_targets(self.cls_assigner, *args, gt_bboxes_ignore)
        num_samples = self._num_pos_avg(cls_t.num_total_pos, device)
        factors = self.calc_reweight_factor(cls_t.labels)
        losses_cls = [
            factor
            * self.loss_cls(
                s.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).contiguous(),
                labels.reshape(-1),
                weights.reshape(-1),
                avg_factor=num_samples,
            )
            for s, labels, weights, factor in zip(
                cls_scores, cls_t.labels, cls_t.label_weights, factors, strict=True
            )
        ]
        reg_t = self._ddod_targets(self.reg_assigner, *args, gt_bboxes_ignore)
        losses_bbox, losses_iou = multi_apply(
            self.loss_reg_single,
            reg_t.anchors,
            bbox_preds,
            iou_preds,
            reg_t.labels,
            reg_t.bbox_targets,
            reg_t.bbox_weights,
            self.calc_reweight_factor(reg_t.labels),
            num_total_samples=self._num_pos_avg(reg_t.num_total_pos, device),
        )
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox, loss_iou=losses_iou)
