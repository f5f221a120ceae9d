"""``FCOSHead``: Fully Convolutional One-Stage detection (Tian et al. 2019), MMDetection v2.28.

Every point inside a ground-truth box (or, with ``center_sampling``, inside a radius of
``center_sample_radius`` strides around its centre) whose largest side distance falls in its
level's ``regress_range`` is a positive of the smallest such box. Positives regress the four
side distances (IoU loss on the decoded boxes, weighted by the centerness target and averaged
over its sum) and a centerness logit (BCE); classification uses the focal loss averaged over the
positives. At test time the scores are multiplied by the sigmoid of the centerness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.base_dense_head import GN32, SIGMOID_BCE
from detforge.models.layers.scale import Scale
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.utils.dist import reduce_mean

__all__ = ["FCOS_REGRESS_RANGES", "FCOSHead", "fcos_centerness_target"]

INF = 1e8
#: v2's default largest-side ranges of the positives of each of the five FPN levels
FCOS_REGRESS_RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF))


def fcos_centerness_target(pos_bbox_targets: torch.Tensor) -> torch.Tensor:
    """Centerness ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of distance targets.

    Args:
        pos_bbox_targets: ``Tensor[N, 4]`` ``(left, top, right, bottom)`` of positive points.

    Example:
        >>> fcos_centerness_target(torch.tensor([[1., 2., 3., 2.]]))
        tensor([0.5774])
    """
    left_right = pos_bbox_targets[:, [0, 2]]
    top_bottom = pos_bbox_targets[:, [1, 3]]
    if len(left_right) == 0:
        centerness = left_right[..., 0]
    else:
        centerness = (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0]) * (
            top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0]
        )
    return torch.sqrt(centerness)


@MODELS.register_module()
class FCOSHead(AnchorFreeHead):
    """FCOS head: :class:`AnchorFreeHead` plus a centerness conv and a :class:`Scale` per level.

    Takes :class:`AnchorFreeHead`'s arguments plus:

    Args:
        regress_ranges: Per level ``(low, high)`` of the largest side distance of a positive.
        center_sampling: Positives only within a radius of the box centre.
        center_sample_radius: That radius, in strides of the point's level.
        norm_on_bbox: Regress distances divided by the stride, through a ReLU instead of
            ``exp`` (FCOS "tricks"); the prediction is multiplied back at test time.
        centerness_on_reg: Predict centerness from the regression tower (else classification).
        loss_centerness: Centerness loss config (default sigmoid BCE).
        norm_cfg: Norm layer of the towers (default GN with 32 groups; ``None`` for none).

    Example:
        >>> head = FCOSHead(num_classes=2, in_channels=8, feat_channels=8, stacked_convs=1,
        ...                 strides=[8], regress_ranges=((-1, 1e8),),
        ...                 norm_cfg=dict(type='GN', num_groups=4))
        >>> cls, reg, ctr = head([torch.zeros(1, 8, 4, 4)])
        >>> tuple(cls[0].shape), tuple(reg[0].shape), tuple(ctr[0].shape)
        ((1, 2, 4, 4), (1, 4, 4, 4), (1, 1, 4, 4))
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        regress_ranges: Sequence[Sequence[float]] = FCOS_REGRESS_RANGES,
        center_sampling: bool = False,
        center_sample_radius: float = 1.5,
        norm_on_bbox: bool = False,
        centerness_on_reg: bool = False,
        loss_centerness: Cfg | nn.Module = SIGMOID_BCE,
        norm_cfg: Cfg | None = GN32,
        **kwargs: Any,
    ) -> None:
        self.regress_ranges = regress_ranges
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            norm_cfg=norm_cfg,
            **kwargs,
        )
        if len(self.regress_ranges) != self.prior_generator.num_levels:
            raise InvalidArgumentError(
                f"FCOSHead: {len(self.regress_ranges)} regress_ranges for "
                f"{self.prior_generator.num_levels} strides"
            )
        self.loss_centerness = build_module(loss_centerness, MODELS)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, C, H, W]``, ``bbox_pred [B, 4, H, W]`` (positive
        distances) and ``centerness [B, 1, H, W]`` (logits)."""
        return multi_apply(
            self.forward_single, feats, list(self.scales), self.prior_generator.strides
        )

    def forward_single(  # type: ignore[override]  # v2's signature: the level's Scale, stride
        self, x: torch.Tensor, scale: nn.Module, stride: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_score, bbox_pred, cls_feat, reg_feat = super().forward_single(x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * stride[0]
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, centerness

    # ---------------------------------------------------------------- targets
    def get_targets(
        self,
        points: Sequence[torch.Tensor],
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_labels_list: Sequence[torch.Tensor],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per level, the labels ``[B * n_l]`` and distance targets ``[B * n_l, 4]`` of the
        batch (image after image; divided by the stride with ``norm_on_bbox``)."""
        if len(points) != len(self.regress_ranges):
            raise InvalidArgumentError(
                f"FCOSHead: {len(points)} point levels for {len(self.regress_ranges)} "
                "regress_ranges"
            )
        num_levels = len(points)
        ranges = torch.cat(
            [
                pts.new_tensor(self.regress_ranges[i])[None].expand_as(pts)
                for i, pts in enumerate(points)
            ],
            dim=0,
        )
        concat_points = torch.cat(list(points), dim=0)
        num_points = [pts.size(0) for pts in points]
        labels_list, targets_list = multi_apply(
            self._get_target_single,
            gt_bboxes_list,
            gt_labels_list,
            points=concat_points,
            regress_ranges=ranges,
            num_points_per_lvl=num_points,
        )
        labels_split = [labels.split(num_points, 0) for labels in labels_list]
        targets_split = [targets.split(num_points, 0) for targets in targets_list]
        level_labels, level_targets = [], []
        for i in range(num_levels):
            level_labels.append(torch.cat([labels[i] for labels in labels_split]))
            targets = torch.cat([t[i] for t in targets_split])
            if self.norm_on_bbox:
                targets = targets / self.prior_generator.strides[i][0]
            level_targets.append(targets)
        return level_labels, level_targets

    def _get_target_single(
        self,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
        points: torch.Tensor,
        regress_ranges: torch.Tensor,
        num_points_per_lvl: Sequence[int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        num_points = points.size(0)
        num_gts = gt_labels.size(0)
        if num_gts == 0:
            return (
                gt_labels.new_full((num_points,), self.num_classes),
                gt_bboxes.new_zeros((num_points, 4)),
            )
        areas = (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1])
        areas = areas[None].repeat(num_points, 1)
        regress_ranges = regress_ranges[:, None, :].expand(num_points, num_gts, 2)
        gt_bboxes = gt_bboxes[None].expand(num_points, num_gts, 4)
        xs = points[:, 0][:, None].expand(num_points, num_gts)
        ys = points[:, 1][:, None].expand(num_points, num_gts)
        bbox_targets = torch.stack(
            (
                xs - gt_bboxes[..., 0],
                ys - gt_bboxes[..., 1],
                gt_bboxes[..., 2] - xs,
                gt_bboxes[..., 3] - ys,
            ),
            -1,
        )
        if self.center_sampling:
            inside_gt = self._inside_center_region(gt_bboxes, xs, ys, num_points_per_lvl)
        else:
            inside_gt = bbox_targets.min(-1)[0] > 0
        max_distance = bbox_targets.max(-1)[0]
        inside_range = (max_distance >= regress_ranges[..., 0]) & (
            max_distance <= regress_ranges[..., 1]
        )
        # a point claimed by several boxes takes the smallest
        areas[~inside_gt] = INF
        areas[~inside_range] = INF
        min_area, min_area_inds = areas.min(dim=1)
        labels = gt_labels[min_area_inds]
        labels[min_area == INF] = self.num_classes
        bbox_targets = bbox_targets[range(num_points), min_area_inds]
        return labels, bbox_targets

    def _inside_center_region(
        self,
        gt_bboxes: torch.Tensor,
        xs: torch.Tensor,
        ys: torch.Tensor,
        num_points_per_lvl: Sequence[int],
    ) -> torch.Tensor:
        """``[P, K]``: the point lies in the box shrunk to ``radius * stride`` around its
        centre (v2's center sampling)."""
        center_xs = (gt_bboxes[..., 0] + gt_bboxes[..., 2]) / 2
        center_ys = (gt_bboxes[..., 1] + gt_bboxes[..., 3]) / 2
        stride = center_xs.new_zeros(center_xs.shape)
        begin = 0
        for lvl, count in enumerate(num_points_per_lvl):
            stride[begin : begin + count] = (
                self.prior_generator.strides[lvl][0] * self.center_sample_radius
            )
            begin += count
        x_mins, y_mins = center_xs - stride, center_ys - stride
        x_maxs, y_maxs = center_xs + stride, center_ys + stride
        region = torch.zeros_like(gt_bboxes)
        region[..., 0] = torch.where(x_mins > gt_bboxes[..., 0], x_mins, gt_bboxes[..., 0])
        region[..., 1] = torch.where(y_mins > gt_bboxes[..., 1], y_mins, gt_bboxes[..., 1])
        region[..., 2] = torch.where(x_maxs > gt_bboxes[..., 2], gt_bboxes[..., 2], x_maxs)
        region[..., 3] = torch.where(y_maxs > gt_bboxes[..., 3], gt_bboxes[..., 3], y_maxs)
        distances = torch.stack(
            (xs - region[..., 0], ys - region[..., 1], region[..., 2] - xs, region[..., 3] - ys),
            -1,
        )
        return distances.min(-1)[0] > 0

    def centerness_target(self, pos_bbox_targets: torch.Tensor) -> torch.Tensor:
        """See :func:`fcos_centerness_target`."""
        return fcos_centerness_target(pos_bbox_targets)

    # ------------------------------------------------------------------ losses
    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        centernesses: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``loss_bbox`` and ``loss_centerness`` (scalars; ignore boxes unused)."""
        if not len(cls_scores) == len(bbox_preds) == len(centernesses):
            raise InvalidArgumentError(
                f"FCOSHead.loss: {len(cls_scores)}, {len(bbox_preds)} and {len(centernesses)} "
                "levels of scores, boxes and centerness"
            )
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype, device=bbox_preds[0].device
        )
        labels, bbox_targets = self.get_targets(points, gt_bboxes, gt_labels)
        num_imgs = cls_scores[0].size(0)
        flat_cls = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for s in cls_scores]
        )
        flat_bbox = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, 4) for b in bbox_preds])
        flat_ctr = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in centernesses])
        flat_labels = torch.cat(labels)
        flat_targets = torch.cat(bbox_targets)
        flat_points = torch.cat([pts.repeat(num_imgs, 1) for pts in points])

        pos_inds = ((flat_labels >= 0) & (flat_labels < self.num_classes)).nonzero().reshape(-1)
        num_pos = self._num_pos_avg(len(pos_inds), bbox_preds[0].device)
        loss_cls = self.loss_cls(flat_cls, flat_labels, avg_factor=num_pos)

        pos_bbox_preds = flat_bbox[pos_inds]
        pos_centerness = flat_ctr[pos_inds]
        pos_targets = flat_targets[pos_inds]
        pos_ctr_targets = self.centerness_target(pos_targets)
        ctr_denorm = max(reduce_mean(pos_ctr_targets.sum().detach()), 1e-6)
        if len(pos_inds) > 0:
            pos_points = flat_points[pos_inds]
            loss_bbox = self.loss_bbox(
                self.bbox_coder.decode(pos_points, pos_bbox_preds),
                self.bbox_coder.decode(pos_points, pos_targets),
                weight=pos_ctr_targets,
                avg_factor=ctr_denorm,
            )
            loss_centerness = self.loss_centerness(
                pos_centerness, pos_ctr_targets, avg_factor=num_pos
            )
        else:
            loss_bbox = pos_bbox_preds.sum()
            loss_centerness = pos_centerness.sum()
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_centerness=loss_centerness)
