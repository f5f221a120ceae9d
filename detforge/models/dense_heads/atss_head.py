"""``ATSSHead``: the ATSS detector's dense head (Zhang et al. 2020), MMDetection v2.28 numerics.

A RetinaNet-like head with one square anchor per location, GN towers, a per-level
:class:`Scale` on the box deltas and a centerness branch on the regression tower. Anchors are
assigned with :class:`ATSSAssigner` (per image, using the count of inside anchors per level);
positives regress their ground-truth box directly (``reg_decoded_bbox=True``) with a GIoU loss
weighted by the centerness target, averaged over the (all-reduced) sum of those weights; the
centerness BCE and the focal classification loss are averaged over the positives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.dense_test import reduce_mean
from detforge.models.layers import ConvModule
from detforge.models.layers.scale import Scale
from detforge.models.utils import anchor_inside_flags, images_to_levels, multi_apply, unmap
from detforge.registry import MODELS, TASK_UTILS, build_module

__all__ = ["ATSSHead", "atss_centerness_target", "atss_targets"]

Cfg = Mapping[str, Any]
_GN32: Cfg = MappingProxyType(dict(type="GN", num_groups=32, requires_grad=True))


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
        raise ValueError("ATSS centerness target is NaN: a positive anchor centre is on a box side")
    return centerness


def _num_level_inside(num_level_anchors: Sequence[int], inside: torch.Tensor) -> list[int]:
    return [int(flags.sum()) for flags in torch.split(inside, list(num_level_anchors))]


def _atss_targets_single(
    flat_anchors: torch.Tensor,
    valid_flags: torch.Tensor,
    num_level_anchors: Sequence[int],
    gt_bboxes: torch.Tensor,
    gt_bboxes_ignore: torch.Tensor | None,
    gt_labels: torch.Tensor | None,
    img_meta: Cfg,
    assigner: Any,
    sampler: Any,
    num_classes: int,
    train_cfg: Cfg,
    unmap_outputs: bool,
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> tuple[Any, ...]:
    inside = anchor_inside_flags(
        flat_anchors, valid_flags, img_meta["img_shape"][:2], train_cfg["allowed_border"]
    )
    if not inside.any():
        return (None,) * 7
    anchors = flat_anchors[inside, :]
    assign_result = assigner.assign(
        anchors,
        _num_level_inside(num_level_anchors, inside),
        gt_bboxes,
        gt_bboxes_ignore,
        gt_labels,
    )
    sampling_result = sampler.sample(assign_result, anchors, gt_bboxes)
    num_valid = anchors.shape[0]
    bbox_targets = torch.zeros_like(anchors)
    bbox_weights = torch.zeros_like(anchors)
    labels = anchors.new_full((num_valid,), num_classes, dtype=torch.long)
    label_weights = anchors.new_zeros(num_valid, dtype=torch.float)
    pos_inds = sampling_result.pos_inds
    neg_inds = sampling_result.neg_inds
    if len(pos_inds) > 0:
        pos_targets = sampling_result.pos_gt_bboxes
        if encode is not None:
            pos_targets = encode(sampling_result.pos_bboxes, pos_targets)
        bbox_targets[pos_inds, :] = pos_targets
        bbox_weights[pos_inds, :] = 1.0
        if gt_labels is None:
            labels[pos_inds] = 0
        else:
            labels[pos_inds] = gt_labels[sampling_result.pos_assigned_gt_inds]
        pos_weight = train_cfg["pos_weight"]
        label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
    if len(neg_inds) > 0:
        label_weights[neg_inds] = 1.0
    if unmap_outputs:
        total = flat_anchors.size(0)
        anchors = unmap(anchors, total, inside)
        labels = unmap(labels, total, inside, fill=num_classes)
        label_weights = unmap(label_weights, total, inside)
        bbox_targets = unmap(bbox_targets, total, inside)
        bbox_weights = unmap(bbox_weights, total, inside)
    return anchors, labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds


def atss_targets(
    anchor_list: Sequence[Sequence[torch.Tensor]],
    valid_flag_list: Sequence[Sequence[torch.Tensor]],
    gt_bboxes_list: Sequence[torch.Tensor],
    img_metas: Sequence[Cfg],
    *,
    assigner: Any,
    sampler: Any,
    num_classes: int,
    train_cfg: Cfg,
    gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
    gt_labels_list: Sequence[torch.Tensor | None] | None = None,
    unmap_outputs: bool = True,
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[Any, ...] | None:
    """ATSS targets of a batch, split by level (v2's ``ATSSHead``/``GFLHead.get_targets``).

    Each image's anchors inside the image are assigned with the count of inside anchors per
    level (``assigner.assign(anchors, num_level_anchors_inside, gt, ignore, labels)``); every
    positive gets label weight 1 (or ``pos_weight``) and its ground-truth box as the box
    target (``x1, y1, x2, y2``, or ``encode(anchor, gt)`` when given), negatives label
    ``num_classes`` with weight 1.

    Args:
        anchor_list: Per image, per level ``Tensor[n_l, 4]``.
        valid_flag_list: Per image, per level ``Tensor[n_l]`` bool.
        gt_bboxes_list: Per image ``Tensor[k, 4]``.
        img_metas: Per image meta (``img_shape``).
        assigner: ATSS-style assigner.
        sampler: Sampler (``PseudoSampler``).
        num_classes: Foreground classes (the background label).
        train_cfg: ``allowed_border`` and ``pos_weight``.
        gt_bboxes_ignore_list: Per image ignored boxes.
        gt_labels_list: Per image labels (``None``: every positive is class 0).
        unmap_outputs: Scatter targets back to all anchors.
        encode: Box coder encoding of the positive targets (ATSSHead), or ``None`` (GFL).

    Returns:
        ``None`` when an image has no anchor inside it, else ``(anchors, labels,
        label_weights, bbox_targets, bbox_weights)`` as per-level lists of ``[B, n_l, ...]``
        plus ``num_total_pos`` and ``num_total_neg`` (each image counts at least 1).
    """
    num_imgs = len(img_metas)
    if not len(anchor_list) == len(valid_flag_list) == num_imgs:
        raise ValueError(
            f"atss_targets: {len(anchor_list)} anchor lists and {len(valid_flag_list)} flag "
            f"lists for {num_imgs} images"
        )
    num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
    results = multi_apply(
        _atss_targets_single,
        [torch.cat(list(anchors)) for anchors in anchor_list],
        [torch.cat(list(flags)) for flags in valid_flag_list],
        [num_level_anchors] * num_imgs,
        gt_bboxes_list,
        list(gt_bboxes_ignore_list or [None] * num_imgs),
        list(gt_labels_list or [None] * num_imgs),
        img_metas,
        assigner=assigner,
        sampler=sampler,
        num_classes=num_classes,
        train_cfg=train_cfg,
        unmap_outputs=unmap_outputs,
        encode=encode,
    )
    anchors, labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds = results
    if any(item is None for item in labels):
        return None
    num_total_pos = sum(max(inds.numel(), 1) for inds in pos_inds)
    num_total_neg = sum(max(inds.numel(), 1) for inds in neg_inds)
    return (
        images_to_levels(anchors, num_level_anchors),
        images_to_levels(labels, num_level_anchors),
        images_to_levels(label_weights, num_level_anchors),
        images_to_levels(bbox_targets, num_level_anchors),
        images_to_levels(bbox_weights, num_level_anchors),
        num_total_pos,
        num_total_neg,
    )


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
        loss_centerness: Centerness loss config (default sigmoid BCE).
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
        norm_cfg: Cfg | None = _GN32,
        reg_decoded_bbox: bool = True,
        loss_centerness: Cfg | None = None,
        feat_channels: int = 256,
        anchor_generator: Cfg | None = None,
        bbox_coder: Cfg | None = None,
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        self.pred_kernel_size = pred_kernel_size
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = None if norm_cfg is None else dict(norm_cfg)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            anchor_generator=anchor_generator,
            bbox_coder=bbox_coder,
            reg_decoded_bbox=reg_decoded_bbox,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg if init_cfg is not None else dict(
                type="Normal", layer="Conv2d", std=0.01,
                override=dict(type="Normal", name="atss_cls", std=0.01, bias_prob=0.01),
            ),
        )  # fmt: skip
        # ATSS never samples, whatever the config says
        self.sampling = False
        if train_cfg:
            self.sampler = build_module(dict(type="PseudoSampler"), TASK_UTILS)
        self.loss_centerness = build_module(
            loss_centerness or dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
            MODELS,
        )

    @property
    def num_anchors(self) -> int:
        """v2's old name of :attr:`num_base_priors`."""
        return self.num_base_priors

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            channels = self.in_channels if i == 0 else self.feat_channels
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(
                    ConvModule(
                        channels,
                        self.feat_channels,
                        3,
                        stride=1,
                        padding=1,
                        conv_cfg=self.conv_cfg,
                        norm_cfg=self.norm_cfg,
                    )
                )
        pad = self.pred_kernel_size // 2
        k = self.pred_kernel_size
        a = self.num_base_priors
        self.atss_cls = nn.Conv2d(self.feat_channels, a * self.cls_out_channels, k, padding=pad)
        self.atss_reg = nn.Conv2d(self.feat_channels, a * 4, k, padding=pad)
        self.atss_centerness = nn.Conv2d(self.feat_channels, a, k, padding=pad)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, A*C, H, W]``, ``bbox_pred [B, A*4, H, W]`` and
        ``centerness [B, A, H, W]`` (logits)."""
        return multi_apply(self.forward_single, feats, list(self.scales))

    def forward_single(  # type: ignore[override]
        self, x: torch.Tensor, scale: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        reg_feat = x
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        cls_score = self.atss_cls(cls_feat)
        # the deltas are scaled but, unlike FCOS, not exponentiated
        bbox_pred = scale(self.atss_reg(reg_feat)).float()
        centerness = self.atss_centerness(reg_feat)
        return cls_score, bbox_pred, centerness

    # ---------------------------------------------------------------- targets
    def get_targets(  # type: ignore[override]
        self,
        anchor_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
        gt_labels_list: Sequence[torch.Tensor | None] | None = None,
        label_channels: int = 1,
        unmap_outputs: bool = True,
    ) -> tuple[Any, ...] | None:
        """Per-level ``(anchors, labels, label_weights, bbox_targets, bbox_weights)`` of the
        batch, plus the positive and negative counts (see :func:`atss_targets`)."""
        assert self.train_cfg is not None
        return atss_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes_list,
            img_metas,
            assigner=self.assigner,
            sampler=self.sampler,
            num_classes=self.num_classes,
            train_cfg=self.train_cfg,
            gt_bboxes_ignore_list=gt_bboxes_ignore_list,
            gt_labels_list=gt_labels_list,
            unmap_outputs=unmap_outputs,
            encode=None if self.reg_decoded_bbox else self.bbox_coder.encode,
        )

    def centerness_target(self, anchors: torch.Tensor, gts: torch.Tensor) -> torch.Tensor:
        """See :func:`atss_centerness_target`."""
        return atss_centerness_target(anchors, gts)

    # ------------------------------------------------------------------ losses
    def loss_single(  # type: ignore[override]
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

    def loss(  # type: ignore[override]
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        centernesses: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[Cfg],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox`` and ``loss_centerness``, one tensor per level."""
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
        anchors, labels, label_weights, bbox_targets, _, num_total_pos, _ = targets
        num_total_samples = reduce_mean(
            torch.tensor(num_total_pos, dtype=torch.float, device=device)
        ).item()
        num_total_samples = max(num_total_samples, 1.0)
        losses_cls, losses_bbox, losses_centerness, bbox_avg_factor = multi_apply(
            self.loss_single,
            anchors,
            cls_scores,
            bbox_preds,
            centernesses,
            labels,
            label_weights,
            bbox_targets,
            num_total_samples=num_total_samples,
        )
        avg = reduce_mean(sum(bbox_avg_factor)).clamp_(min=1).item()
        losses_bbox = [loss / avg for loss in losses_bbox]
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox, loss_centerness=losses_centerness)
