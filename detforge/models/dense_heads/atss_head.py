"""``ATSSHead``: the ATSS detector's dense head (Zhang et al. 2020), MMDetection v2.28 numerics.

A RetinaNet-like head with one square anchor per location, GN towers, a per-level
:class:`Scale` on the box deltas and a centerness branch on the regression tower. Anchors are
assigned with :class:`ATSSAssigner` (per image, using the count of inside anchors per level);
positives regress their ground-truth box directly (``reg_decoded_bbox=True``) with a GIoU loss
weighted by the centerness target, averaged over the (all-reduced) sum of those weights; the
centerness BCE and the focal classification loss are averaged over the positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.base_dense_head import (
    GN32,
    SIGMOID_BCE,
    conv_tower,
    prior_init_cfg,
)
from detforge.models.layers.scale import Scale
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta
from detforge.utils.dist import reduce_mean

__all__ = ["ATSSHead", "atss_centerness_target"]


def atss_centerness_target(anchors: torch.Tensor, gts: torch.Tensor) -> torch.Tensor:
    """Centerness ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of anchor centres.

    ``l, t, r, b`` are the distances from each anchor's centre to the sides of its ground
    truth; call it for positives only (their centres lie inside the box).

    Args:
        anchors: ``Tensor[N, 4]``.
        gts: ``Tensor[N, 4]`` matched ground truths.

    Example:
        >>> anchors = torch.tensor([[0., 0., 4., 4.]])
        >>> atss_centerness_target(anchors, torch.tensor([[0., 0., 8., 4.]]))
        tensor([0.5774])
    """
    cx = (anchors[:, 2] + anchors[:, 0]) / 2
    cy = (anchors[:, 3] + anchors[:, 1]) / 2
    left_right = torch.stack([cx - gts[:, 0], gts[:, 2] - cx], dim=1)
    top_bottom = torch.stack([cy - gts[:, 1], gts[:, 3] - cy], dim=1)
    centerness = torch.sqrt(
        (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0])
        * (top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0])
    )
    if torch.isnan(centerness).any():
        raise InvalidArgumentError(
            "ATSS centerness target is NaN: a positive anchor centre is on a box side"
        )
    return centerness


@MODELS.register_module()
class ATSSHead(AnchorHead):
    """ATSS head: GN conv towers, ``atss_cls``/``atss_reg``/``atss_centerness`` predictors.

    Takes :class:`AnchorHead`'s arguments plus:

    Args:
        pred_kernel_size: Kernel size of the three predictor convs.
        stacked_convs: 3x3 ConvModules per tower.
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers (default GN, 32 groups; ``None`` for none).
        reg_decoded_bbox: Regress decoded boxes (default True, for the GIoU loss).
        loss_centerness: Centerness loss (default sigmoid BCE).
        init_cfg: Default Normal(std=0.01) for every ``Conv2d``, 0.01-prior bias for
            ``atss_cls``.

    Example:
        >>> head = ATSSHead(num_classes=2, in_channels=8, feat_channels=8, stacked_convs=1,
        ...                 norm_cfg=dict(type='GN', num_groups=4),
        ...                 anchor_generator=dict(type='AnchorGenerator', ratios=[1.0],
        ...                     octave_base_scale=8, scales_per_octave=1, strides=[8]))
        >>> cls, reg, ctr = head([torch.zeros(1, 8, 4, 4)])
        >>> tuple(cls[0].shape), tuple(reg[0].shape), tuple(ctr[0].shape)
        ((1, 2, 4, 4), (1, 4, 4, 4), (1, 1, 4, 4))
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        pred_kernel_size: int = 3,
        stacked_convs: int = 4,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = GN32,
        reg_decoded_bbox: bool = True,
        loss_centerness: Cfg | nn.Module = SIGMOID_BCE,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        self.pred_kernel_size = pred_kernel_size
        self.stacked_convs = stacked_convs
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            reg_decoded_bbox=reg_decoded_bbox,
            init_cfg=prior_init_cfg("atss_cls") if init_cfg is None else init_cfg,
            **kwargs,
        )
        # ATSS never samples, whatever the config says
        self.sampling = False
        if self.train_cfg:
            self.sampler = PseudoSampler()
        self.loss_centerness = build_module(loss_centerness, MODELS)

    @property
    def num_anchors(self) -> int:
        """v2's old name of :attr:`num_base_priors`."""
        return self.num_base_priors

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        pad = self.pred_kernel_size // 2
        k = self.pred_kernel_size
        a = self.num_base_priors
        self.atss_cls = nn.Conv2d(self.feat_channels, a * self.cls_out_channels, k, padding=pad)
        self.atss_reg = nn.Conv2d(self.feat_channels, a * 4, k, padding=pad)
        self.atss_centerness = nn.Conv2d(self.feat_channels, a, k, padding=pad)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    def _tower(self) -> nn.Sequential:
        return conv_tower(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg
        )

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, A*C, H, W]``, ``bbox_pred [B, A*4, H, W]`` and
        ``centerness [B, A, H, W]`` (logits)."""
        return multi_apply(self.forward_single, feats, list(self.scales))

    def forward_single(  # type: ignore[override]  # v2's signature: the level's Scale
        self, x: torch.Tensor, scale: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_feat = self.cls_convs(x)
        reg_feat = self.reg_convs(x)
        cls_score = self.atss_cls(cls_feat)
        # the deltas are scaled but, unlike FCOS, not exponentiated
        bbox_pred = scale(self.atss_reg(reg_feat)).float()
        centerness = self.atss_centerness(reg_feat)
        return cls_score, bbox_pred, centerness

    def centerness_target(self, anchors: torch.Tensor, gts: torch.Tensor) -> torch.Tensor:
        """See :func:`atss_centerness_target`."""
        return atss_centerness_target(anchors, gts)

    # ------------------------------------------------------------------ losses
    def loss_single(  # type: ignore[override]  # v2's signature: anchors first, centerness
        self,
        anchors: torch.Tensor,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        centerness: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        num_total_samples: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level's ``(loss_cls, loss_bbox (unnormalised), loss_centerness, sum of the
        positives' centerness targets)``."""
        anchors = anchors.reshape(-1, 4)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).contiguous()
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        centerness = centerness.permute(0, 2, 3, 1).reshape(-1)
        bbox_targets = bbox_targets.reshape(-1, 4)
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=num_total_samples)
        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if len(pos_inds) > 0:
            pos_targets = bbox_targets[pos_inds]
            pos_anchors = anchors[pos_inds]
            centerness_targets = self.centerness_target(pos_anchors, pos_targets)
            pos_decoded = self.bbox_coder.decode(pos_anchors, bbox_pred[pos_inds])
            loss_bbox = self.loss_bbox(
                pos_decoded, pos_targets, weight=centerness_targets, avg_factor=1.0
            )
            loss_centerness = self.loss_centerness(
                centerness[pos_inds], centerness_targets, avg_factor=num_total_samples
            )
        else:
            loss_bbox = bbox_pred.sum() * 0
            loss_centerness = centerness.sum() * 0
            centerness_targets = bbox_targets.new_tensor(0.0)
        return loss_cls, loss_bbox, loss_centerness, centerness_targets.sum()

    def loss(  # type: ignore[override]  # v2's signature: the centerness maps third
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        centernesses: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox`` and ``loss_centerness``, one tensor per level."""
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        losses_cls, losses_bbox, losses_centerness, bbox_avg_factor = multi_apply(
            self.loss_single,
            t.anchors,
            cls_scores,
            bbox_preds,
            centernesses,
            t.labels,
            t.label_weights,
            t.bbox_targets,
            num_total_samples=self._num_pos_avg(t.num_total_pos, cls_scores[0].device),
        )
        avg = reduce_mean(sum(bbox_avg_factor)).clamp_(min=1).item()
        losses_bbox = [loss / avg for loss in losses_bbox]
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox, loss_centerness=losses_centerness)
