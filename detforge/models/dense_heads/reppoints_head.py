"""``RepPointsHead``: RepPoints (Yang et al. 2019), MMDetection v2.28 layout and numerics.

Each location predicts a set of ``num_points`` points in two stages. Init: a conv predicts
point offsets (from the cell's point, in stride units; with ``use_grid_points`` a box regression
turned into a grid of points). Refine: a deformable conv samples the features at the init points
(their gradient scaled by ``gradient_mul``) and predicts a correction, and a second deformable
conv classifies. Points become boxes by :func:`points_to_bbox` (``minmax``, ``partial_minmax``
of the first 4 points, or ``moment``: mean ± std times a learnt ``exp(moment_transfer)``).

Training: the init stage is assigned by ``train_cfg.init.assigner`` (``PointAssigner`` on the
points, or ``MaxIoUAssigner`` on square boxes of ``point_base_scale * stride``), the refine
stage by ``train_cfg.refine.assigner`` on the (detached) init boxes. Box losses compare boxes
divided by ``point_base_scale * stride``; the classification uses the refine assignment.
At test time the refined boxes are decoded like any dense head's (stride times the box around
the cell's point, clipped to the image).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.base_dense_head import prior_init_cfg
from detforge.models.layers.dcn import DeformConv2d
from detforge.models.losses import FocalLoss
from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import images_to_levels, multi_apply, unmap
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["RepPointsHead", "grid_points_from_reg", "points_to_bbox"]

TRANSFORMS = ("minmax", "partial_minmax", "moment")


def points_to_bbox(
    pts: torch.Tensor,
    transform_method: str,
    y_first: bool = True,
    moment_transfer: torch.Tensor | None = None,
    moment_mul: float = 0.01,
) -> torch.Tensor:
    """Boxes ``[N, 4, ...]`` from point sets ``[N, 2n, ...]`` (``y, x`` pairs when
    ``y_first``); ``moment`` needs the learnt ``moment_transfer [2]``, whose gradient is scaled
    by ``moment_mul``.

    Example:
        >>> pts = torch.tensor([[0., 1., 4., 3., 2., 5.]])  # (y, x) pairs
        >>> points_to_bbox(pts, 'minmax').tolist()
        [[1.0, 0.0, 5.0, 4.0]]
    """
    pairs = pts.view(pts.shape[0], -1, 2, *pts.shape[2:])
    pts_y = pairs[:, :, 0, ...] if y_first else pairs[:, :, 1, ...]
    pts_x = pairs[:, :, 1, ...] if y_first else pairs[:, :, 0, ...]
    if transform_method in ("minmax", "partial_minmax"):
        if transform_method == "partial_minmax":
            pts_y, pts_x = pts_y[:, :4, ...], pts_x[:, :4, ...]
        return torch.cat(
            [
                pts_x.min(dim=1, keepdim=True)[0],
                pts_y.min(dim=1, keepdim=True)[0],
                pts_x.max(dim=1, keepdim=True)[0],
                pts_y.max(dim=1, keepdim=True)[0],
            ],
            dim=1,
        )
    if transform_method != "moment" or moment_transfer is None:
        raise InvalidArgumentError(
            f"points_to_bbox: transform_method {transform_method!r} is not one of "
            f"{TRANSFORMS} (moment needs moment_transfer)"
        )
    y_mean = pts_y.mean(dim=1, keepdim=True)
    x_mean = pts_x.mean(dim=1, keepdim=True)
    y_std = torch.std(pts_y - y_mean, dim=1, keepdim=True)
    x_std = torch.std(pts_x - x_mean, dim=1, keepdim=True)
    transfer = moment_transfer * moment_mul + moment_transfer.detach() * (1 - moment_mul)
    half_width = x_std * torch.exp(transfer[0])
    half_height = y_std * torch.exp(transfer[1])
    return torch.cat(
        [x_mean - half_width, y_mean - half_height, x_mean + half_width, y_mean + half_height],
        dim=1,
    )


def grid_points_from_reg(
    reg: torch.Tensor, previous_boxes: torch.Tensor, dcn_kernel: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply box deltas ``reg [B, 4, H, W]`` (centre shift in box units, log size) to
    ``previous_boxes`` and lay a ``dcn_kernel²`` grid of ``(y, x)`` points on the result.

    Returns:
        ``(grid [B, 2 k², H, W], boxes [B, 4, H, W])``.
    """
    b, _, h, w = reg.shape
    bxy = (previous_boxes[:, :2, ...] + previous_boxes[:, 2:, ...]) / 2.0
    bwh = (previous_boxes[:, 2:, ...] - previous_boxes[:, :2, ...]).clamp(min=1e-6)
    grid_topleft = bxy + bwh * reg[:, :2, ...] - 0.5 * bwh * torch.exp(reg[:, 2:, ...])
    grid_wh = bwh * torch.exp(reg[:, 2:, ...])
    left, top = grid_topleft[:, [0], ...], grid_topleft[:, [1], ...]
    width, height = grid_wh[:, [0], ...], grid_wh[:, [1], ...]
    interval = torch.linspace(0.0, 1.0, dcn_kernel).view(1, dcn_kernel, 1, 1).type_as(reg)
    grid_x = (left + width * interval).unsqueeze(1).repeat(1, dcn_kernel, 1, 1, 1)
    grid_y = (top + height * interval).unsqueeze(2).repeat(1, 1, dcn_kernel, 1, 1)
    grid_yx = torch.stack([grid_y.view(b, -1, h, w), grid_x.view(b, -1, h, w)], dim=2)
    boxes = torch.cat([left, top, left + width, top + height], 1)
    return grid_yx.view(b, -1, h, w), boxes


@MODELS.register_module()
class RepPointsHead(AnchorFreeHead):
    """RepPoints head (see the module docstring); the other arguments are
    :class:`AnchorFreeHead`'s.

    Args:
        point_feat_channels: Channels of the point convs.
        num_points: Points per set (an odd square: the deformable kernel is its root).
        gradient_mul: Scale of the gradient from the refine stage into the init points.
        point_strides: Stride of each level.
        point_base_scale: Box size of a level in strides (assignment and loss normaliser).
        loss_bbox_init: Init-stage box loss.
        loss_bbox_refine: Refine-stage box loss.
        use_grid_points: Represent the point set by a box (grid points on it).
        center_init: Start the points at the cell's point (else a ``point_base_scale`` grid).
        transform_method: ``'minmax'``, ``'partial_minmax'`` or ``'moment'``.
        moment_mul: Gradient scale of ``moment_transfer``.

    Raises:
        ValueError: ``num_points`` is not an odd square, or an unknown ``transform_method``.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset({"init", "refine", "sampler"})

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        point_feat_channels: int = 256,
        num_points: int = 9,
        gradient_mul: float = 0.1,
        point_strides: Sequence[int] = (8, 16, 32, 64, 128),
        point_base_scale: int = 4,
        loss_cls: Cfg | nn.Module = MappingProxyType(
            dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
        ),
        loss_bbox_init: Cfg | nn.Module = MappingProxyType(
            dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=0.5)
        ),
        loss_bbox_refine: Cfg | nn.Module = MappingProxyType(
            dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0)
        ),
        use_grid_points: bool = False,
        center_init: bool = True,
        transform_method: str = "moment",
        moment_mul: float = 0.01,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        dcn_kernel = int(np.sqrt(num_points))
        if dcn_kernel * dcn_kernel != num_points or dcn_kernel % 2 != 1:
            raise InvalidArgumentError(
                f"RepPointsHead: num_points must be an odd square, got {num_points}"
            )
        if transform_method not in TRANSFORMS:
            raise InvalidArgumentError(
                f"RepPointsHead: transform_method must be one of {TRANSFORMS}, got "
                f"{transform_method!r}"
            )
        self.num_points = num_points
        self.point_feat_channels = point_feat_channels
        self.use_grid_points = use_grid_points
        self.center_init = center_init
        self.dcn_kernel = dcn_kernel
        self.dcn_pad = (dcn_kernel - 1) // 2
        base = np.arange(-self.dcn_pad, self.dcn_pad + 1).astype(np.float64)
        base_offset = np.stack([np.repeat(base, dcn_kernel), np.tile(base, dcn_kernel)], axis=1)
        self.dcn_base_offset = torch.tensor(base_offset.reshape(-1)).view(1, -1, 1, 1)
        super().__init__(
            num_classes,
            in_channels,
            loss_cls=loss_cls,
            init_cfg=prior_init_cfg("reppoints_cls_out") if init_cfg is None else init_cfg,
            **kwargs,
        )
        self.gradient_mul = gradient_mul
        self.point_base_scale = point_base_scale
        self.point_strides = list(point_strides)
        self.prior_generator = MlvlPointGenerator(self.point_strides, offset=0.0)
        self.sampling = not isinstance(self.loss_cls, FocalLoss)
        if self.train_cfg:
            self.init_assigner = build_module(self.train_cfg["init"]["assigner"], TASK_UTILS)
            self.refine_assigner = build_module(self.train_cfg["refine"]["assigner"], TASK_UTILS)
            sampler = self.train_cfg.get("sampler") if self.sampling else None
            self.sampler: Any = (
                PseudoSampler() if sampler is None else build_module(sampler, TASK_UTILS)
            )
        self.transform_method = transform_method
        if transform_method == "moment":
            self.moment_transfer = nn.Parameter(data=torch.zeros(2), requires_grad=True)
            self.moment_mul = moment_mul
        self.loss_bbox_init: Any = build_module(loss_bbox_init, MODELS)
        self.loss_bbox_refine: Any = build_module(loss_bbox_refine, MODELS)

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        pts_out_dim = 4 if self.use_grid_points else 2 * self.num_points
        feat, point_feat, k = self.feat_channels, self.point_feat_channels, self.dcn_kernel
        self.reppoints_cls_conv = DeformConv2d(feat, point_feat, k, 1, self.dcn_pad)
        self.reppoints_cls_out = nn.Conv2d(point_feat, self.cls_out_channels, 1, 1, 0)
        self.reppoints_pts_init_conv = nn.Conv2d(feat, point_feat, 3, 1, 1)
        self.reppoints_pts_init_out = nn.Conv2d(point_feat, pts_out_dim, 1, 1, 0)
        self.reppoints_pts_refine_conv = DeformConv2d(feat, point_feat, k, 1, self.dcn_pad)
        self.reppoints_pts_refine_out = nn.Conv2d(point_feat, pts_out_dim, 1, 1, 0)

    def points2bbox(self, pts: torch.Tensor, y_first: bool = True) -> torch.Tensor:
        """:func:`points_to_bbox` with this head's transform (v2's method name)."""
        return points_to_bbox(
            pts,
            self.transform_method,
            y_first,
            getattr(self, "moment_transfer", None),
            getattr(self, "moment_mul", 0.01),
        )

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Training: per level ``(cls_score, pts_init, pts_refine)``; testing:
        ``(cls_score, bbox_refine)`` (v2)."""
        return multi_apply(self.forward_single, feats)

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dcn_base_offset = self.dcn_base_offset.type_as(x)
        points_init: torch.Tensor | float = 0
        if self.use_grid_points or not self.center_init:
            scale = self.point_base_scale / 2
            points_init = dcn_base_offset / dcn_base_offset.max() * scale
            bbox_init = x.new_tensor([-scale, -scale, scale, scale]).view(1, 4, 1, 1)
        cls_feat = self.cls_convs(x)
        pts_feat = self.reg_convs(x)
        pts_out_init = self.reppoints_pts_init_out(
            self.relu(self.reppoints_pts_init_conv(pts_feat))
        )
        if self.use_grid_points:
            pts_out_init, bbox_out_init = grid_points_from_reg(
                pts_out_init, bbox_init.detach(), self.dcn_kernel
            )
        else:
            pts_out_init = pts_out_init + points_init
        # the refine stage's gradient into the init points is scaled by gradient_mul
        pts_grad_mul = (
            1 - self.gradient_mul
        ) * pts_out_init.detach() + self.gradient_mul * pts_out_init
        dcn_offset = pts_grad_mul - dcn_base_offset
        cls_out = self.reppoints_cls_out(self.relu(self.reppoints_cls_conv(cls_feat, dcn_offset)))
        pts_out_refine = self.reppoints_pts_refine_out(
            self.relu(self.reppoints_pts_refine_conv(pts_feat, dcn_offset))
        )
        if self.use_grid_points:
            pts_out_refine, _ = grid_points_from_reg(
                pts_out_refine, bbox_out_init.detach(), self.dcn_kernel
            )
        else:
            pts_out_refine = pts_out_refine + pts_out_init.detach()
        if self.training:
            return cls_out, pts_out_init, pts_out_refine
        return cls_out, self.points2bbox(pts_out_refine)

    # ----------------------------------------------------------------- decoding
    def _flat_bbox_pred(self, bbox_pred: torch.Tensor, level: int) -> torch.Tensor:
        # boxes are in stride units around the cell's point
        return bbox_pred.permute(1, 2, 0).reshape(-1, 4) * self.point_strides[level]

    def _decode_bboxes(
        self, priors: torch.Tensor, bbox_pred: torch.Tensor, max_shape: Any
    ) -> torch.Tensor:
        bboxes = bbox_pred + torch.cat([priors[:, :2], priors[:, :2]], dim=1)
        x1 = bboxes[:, 0].clamp(min=0, max=max_shape[1])
        y1 = bboxes[:, 1].clamp(min=0, max=max_shape[0])
        x2 = bboxes[:, 2].clamp(min=0, max=max_shape[1])
        y2 = bboxes[:, 3].clamp(min=0, max=max_shape[0])
        return torch.stack([x1, y1, x2, y2], dim=-1)

    # ------------------------------------------------------------------ targets
    def _points_and_flags(
        self, featmap_sizes: Sequence[Any], img_metas: Sequence[ImgMeta], device: Any
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """Per image the per-level points ``(x, y, stride_w, stride_h)`` and valid flags."""
        points = self.prior_generator.grid_priors(featmap_sizes, device=device, with_stride=True)
        flags = [
            self.prior_generator.valid_flags(featmap_sizes, meta["pad_shape"], device=device)
            for meta in img_metas
        ]
        return [[p.clone() for p in points] for _ in img_metas], flags

    def centers_to_bboxes(self, point_list: Sequence[Sequence[torch.Tensor]]) -> list[Any]:
        """Square boxes of side ``point_base_scale * stride`` around the points (for
        ``MaxIoUAssigner`` in the init stage)."""
        boxes = []
        for points in point_list:
            per_level = []
            for level, stride in enumerate(self.point_strides):
                scale = self.point_base_scale * stride * 0.5
                shift = torch.tensor([-scale, -scale, scale, scale]).view(1, 4).type_as(points[0])
                centre = torch.cat([points[level][:, :2], points[level][:, :2]], dim=1)
                per_level.append(centre + shift)
            boxes.append(per_level)
        return boxes

    def offset_to_pts(
        self, center_list: Sequence[Sequence[torch.Tensor]], pred_list: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Per level ``[B, HW, 2n]`` absolute ``(x, y)`` points from ``(y, x)`` offsets."""
        pts_list = []
        for level, stride in enumerate(self.point_strides):
            per_image = []
            for img_id in range(len(center_list)):
                centre = center_list[img_id][level][:, :2].repeat(1, self.num_points)
                yx = pred_list[level][img_id].permute(1, 2, 0).view(-1, 2 * self.num_points)
                xy = torch.stack([yx[..., 1::2], yx[..., 0::2]], -1).view(*yx.shape[:-1], -1)
                per_image.append(xy * stride + centre)
            pts_list.append(torch.stack(per_image, 0))
        return pts_list

    def _point_target_single(
        self,
        flat_proposals: torch.Tensor,
        valid_flags: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None,
        gt_labels: torch.Tensor | None,
        stage: str = "init",
    ) -> tuple[Any, ...]:
        if not valid_flags.any():
            return (None,) * 7
        proposals = flat_proposals[valid_flags, :]
        assigner = self.init_assigner if stage == "init" else self.refine_assigner
        train_cfg: Any = self.train_cfg
        pos_weight = train_cfg[stage]["pos_weight"]
        assign_result = assigner.assign(
            proposals, gt_bboxes, gt_bboxes_ignore, None if self.sampling else gt_labels
        )
        sampling = self.sampler.sample(assign_result, proposals, gt_bboxes)
        num_valid = proposals.shape[0]
        bbox_gt = proposals.new_zeros([num_valid, 4])
        pos_proposals = torch.zeros_like(proposals)
        proposal_weights = proposals.new_zeros([num_valid, 4])
        labels = proposals.new_full((num_valid,), self.num_classes, dtype=torch.long)
        label_weights = proposals.new_zeros(num_valid, dtype=torch.float)
        pos_inds, neg_inds = sampling.pos_inds, sampling.neg_inds
        if len(pos_inds) > 0:
            bbox_gt[pos_inds, :] = sampling.pos_gt_bboxes
            pos_proposals[pos_inds, :] = proposals[pos_inds, :]
            proposal_weights[pos_inds, :] = 1.0
            labels[pos_inds] = 0 if gt_labels is None else gt_labels[sampling.pos_assigned_gt_inds]
            label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
        if len(neg_inds) > 0:
            label_weights[neg_inds] = 1.0
        total = flat_proposals.size(0)
        return (
            unmap(labels, total, valid_flags),
            unmap(label_weights, total, valid_flags),
            unmap(bbox_gt, total, valid_flags),
            unmap(pos_proposals, total, valid_flags),
            unmap(proposal_weights, total, valid_flags),
            pos_inds,
            neg_inds,
        )

    def get_targets(
        self,
        proposals_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_bboxes_ignore_list: Sequence[torch.Tensor] | None = None,
        gt_labels_list: Sequence[torch.Tensor] | None = None,
        stage: str = "init",
    ) -> tuple[Any, ...]:
        """Per level ``labels, label_weights, bbox_gt, proposals, proposal_weights`` and the
        positive and negative counts (each image counts at least 1), for ``stage``."""
        num_imgs = len(proposals_list)
        num_level = [points.size(0) for points in proposals_list[0]]
        results = multi_apply(
            self._point_target_single,
            [torch.cat(list(p)) for p in proposals_list],
            [torch.cat(list(f)) for f in valid_flag_list],
            gt_bboxes_list,
            gt_bboxes_ignore_list or [None] * num_imgs,
            gt_labels_list or [None] * num_imgs,
            stage=stage,
        )
        *per_image, pos_inds_list, neg_inds_list = results
        if any(labels is None for labels in per_image[0]):
            raise InvalidArgumentError(
                f"RepPointsHead: an image has no valid point ({stage} stage)"
            )
        num_pos = sum(max(inds.numel(), 1) for inds in pos_inds_list)
        num_neg = sum(max(inds.numel(), 1) for inds in neg_inds_list)
        levels = [images_to_levels(items, num_level) for items in per_image]
        return (*levels, num_pos, num_neg)

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        pts_preds_init: Sequence[torch.Tensor],
        pts_preds_refine: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_pts_init`` and ``loss_pts_refine`` per level."""
        featmap_sizes = [score.size()[-2:] for score in cls_scores]
        device = cls_scores[0].device
        centers, flags = self._points_and_flags(featmap_sizes, img_metas, device)
        pts_init = self.offset_to_pts(centers, pts_preds_init)
        if type(self.init_assigner).__name__ == "PointAssigner":
            candidates: list[Any] = centers
        else:
            candidates = self.centers_to_bboxes(centers)
        _, _, bbox_gt_init, _, bbox_weights_init, pos_init, neg_init = self.get_targets(
            candidates, flags, gt_bboxes, gt_bboxes_ignore, gt_labels, stage="init"
        )
        samples_init = pos_init + neg_init if self.sampling else pos_init
        # refine stage: assigned on the detached init boxes
        centers, flags = self._points_and_flags(featmap_sizes, img_metas, device)
        pts_refine = self.offset_to_pts(centers, pts_preds_refine)
        init_boxes = [self.points2bbox(p.detach()) for p in pts_preds_init]
        bbox_list = [
            [
                torch.cat([center[level][:, :2], center[level][:, :2]], dim=1)
                + (init_boxes[level] * stride)[img_id].permute(1, 2, 0).reshape(-1, 4)
                for level, stride in enumerate(self.point_strides)
            ]
            for img_id, center in enumerate(centers)
        ]
        labels, label_weights, bbox_gt_refine, _, bbox_weights_refine, pos_ref, neg_ref = (
            self.get_targets(
                bbox_list, flags, gt_bboxes, gt_bboxes_ignore, gt_labels, stage="refine"
            )
        )
        samples_refine = pos_ref + neg_ref if self.sampling else pos_ref
        losses_cls, losses_init, losses_refine = multi_apply(
            self.loss_single,
            cls_scores,
            pts_init,
            pts_refine,
            labels,
            label_weights,
            bbox_gt_init,
            bbox_weights_init,
            bbox_gt_refine,
            bbox_weights_refine,
            self.point_strides,
            num_total_samples_init=samples_init,
            num_total_samples_refine=samples_refine,
        )
        return dict(loss_cls=losses_cls, loss_pts_init=losses_init, loss_pts_refine=losses_refine)

    def loss_single(
        self,
        cls_score: torch.Tensor,
        pts_pred_init: torch.Tensor,
        pts_pred_refine: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_gt_init: torch.Tensor,
        bbox_weights_init: torch.Tensor,
        bbox_gt_refine: torch.Tensor,
        bbox_weights_refine: torch.Tensor,
        stride: int,
        num_total_samples_init: int,
        num_total_samples_refine: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level's ``(loss_cls, loss_pts_init, loss_pts_refine)``."""
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).contiguous()
        loss_cls = self.loss_cls(
            cls_score,
            labels.reshape(-1),
            label_weights.reshape(-1),
            avg_factor=num_total_samples_refine,
        )
        normalize_term = self.point_base_scale * stride
        box_init = self.points2bbox(pts_pred_init.reshape(-1, 2 * self.num_points), y_first=False)
        box_refine = self.points2bbox(
            pts_pred_refine.reshape(-1, 2 * self.num_points), y_first=False
        )
        loss_init = self.loss_bbox_init(
            box_init / normalize_term,
            bbox_gt_init.reshape(-1, 4) / normalize_term,
            bbox_weights_init.reshape(-1, 4),
            avg_factor=num_total_samples_init,
        )
        loss_refine = self.loss_bbox_refine(
            box_refine / normalize_term,
            bbox_gt_refine.reshape(-1, 4) / normalize_term,
            bbox_weights_refine.reshape(-1, 4),
            avg_factor=num_total_samples_refine,
        )
        return loss_cls, loss_init, loss_refine
