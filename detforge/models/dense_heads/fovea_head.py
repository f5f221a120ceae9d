"""``FoveaHead``: FoveaBox (Kong et al. 2019), MMDetection v2.28 numerics.

Targets, per image and level: the ground truths whose ``sqrt(area)`` lies in the level's
``scale_ranges`` (bounds included), larger boxes first so that smaller ones overwrite them, each
mark their *fovea*: the cells (in feature-map units, box divided by the stride) from
``ceil(x1 + (1 - sigma) * w / 2 - 0.5)`` to ``floor(x1 + (1 + sigma) * w / 2 - 0.5)`` (and the same
in y), clamped to the map. A fovea cell gets the box's label and the box target
``log((x - x1) / base_len, (y - y1) / base_len, (x2 - x) / base_len, (y2 - y) / base_len)`` of
the cell's point, each ratio clamped to ``[1/16, 16]``. The focal loss is averaged over
``positives + images``, the box loss (smooth L1 on the log targets) over the positives.

Test: per level the ``nms_pre`` best (point, class) pairs above ``score_thr``, boxes
``x -+ base_len * exp(pred)`` clamped to ``[0, W - 1]`` / ``[0, H - 1]``, then class-wise NMS.

``with_deform`` (the "align" configs): the classification branch first resamples the features
with a deformable conv whose offsets come from the exponentiated box prediction
(:class:`FeatureAdaption` on the 4-channel prediction, v2's ``FeatureAlign``), then a 3x3 and
a 1x1 ConvModule at 4x the width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.guided_anchor_head import FeatureAdaption
from detforge.models.layers import ConvModule
from detforge.registry import MODELS
from detforge.structures import ImgMeta

__all__ = ["FoveaHead", "fovea_targets_single"]

_SCALE_RANGES = ((8, 32), (16, 64), (32, 128), (64, 256), (128, 512))


def fovea_targets_single(
    gt_bboxes: torch.Tensor,
    gt_labels: torch.Tensor,
    featmap_sizes: Sequence[Sequence[int]],
    points: Sequence[torch.Tensor],
    *,
    strides: Sequence[int],
    base_edges: Sequence[float],
    scale_ranges: Sequence[Sequence[float]],
    sigma: float,
    num_classes: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One image's per-level labels ``Tensor[H, W]`` (background ``num_classes``) and log box
    targets ``Tensor[H, W, 4]`` (see the module docstring; 0 off the foveae).

    Example:
        >>> labels, targets = fovea_targets_single(
        ...     torch.tensor([[0., 0., 32., 32.]]), torch.tensor([2]), [(4, 4)],
        ...     [torch.tensor([[x * 8 + 4., y * 8 + 4.] for y in range(4) for x in range(4)])],
        ...     strides=[8], base_edges=[16], scale_ranges=[(1, 64)], sigma=0.4, num_classes=3)
        >>> labels[0].tolist()
        [[3, 3, 3, 3], [3, 2, 2, 3], [3, 2, 2, 3], [3, 3, 3, 3]]
    """
    sqrt_areas = torch.sqrt(
        (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1])
    )
    labels_list, targets_list = [], []
    for base_len, (low, high), stride, (h, w), level_points in zip(
        base_edges, scale_ranges, strides, featmap_sizes, points, strict=True
    ):
        h, w = int(h), int(w)
        xy = level_points.view(h, w, 2)
        x, y = xy[..., 0], xy[..., 1]
        labels = gt_labels.new_full((h, w), num_classes)
        targets = gt_bboxes.new_ones(h, w, 4)
        hits = ((sqrt_areas >= low) & (sqrt_areas <= high)).nonzero().flatten()
        if len(hits):
            _, order = torch.sort(-sqrt_areas[hits])
            hits = hits[order]
            boxes = gt_bboxes[hits] / stride
            half_w = 0.5 * (boxes[:, 2] - boxes[:, 0])
            half_h = 0.5 * (boxes[:, 3] - boxes[:, 1])
            left = torch.ceil(boxes[:, 0] + (1 - sigma) * half_w - 0.5).long().clamp(0, w - 1)
            right = torch.floor(boxes[:, 0] + (1 + sigma) * half_w - 0.5).long().clamp(0, w - 1)
            top = torch.ceil(boxes[:, 1] + (1 - sigma) * half_h - 0.5).long().clamp(0, h - 1)
            down = torch.floor(boxes[:, 1] + (1 + sigma) * half_h - 0.5).long().clamp(0, h - 1)
            for x1, y1, x2, y2, label, gt in zip(
                left.tolist(),
                top.tolist(),
                right.tolist(),
                down.tolist(),
                gt_labels[hits],
                gt_bboxes[hits],
                strict=True,
            ):
                rows, cols = slice(y1, y2 + 1), slice(x1, x2 + 1)
                labels[rows, cols] = label
                targets[rows, cols, 0] = (x[rows, cols] - gt[0]) / base_len
                targets[rows, cols, 1] = (y[rows, cols] - gt[1]) / base_len
                targets[rows, cols, 2] = (gt[2] - x[rows, cols]) / base_len
                targets[rows, cols, 3] = (gt[3] - y[rows, cols]) / base_len
            targets = targets.clamp(min=1.0 / 16, max=16.0)
        labels_list.append(labels)
        targets_list.append(torch.log(targets))
    return labels_list, targets_list


@MODELS.register_module()
class FoveaHead(AnchorFreeHead):
    """FoveaBox head (see the module docstring).

    Takes :class:`AnchorFreeHead`'s arguments plus:

    Args:
        base_edge_list: Per level, the length that normalises the box distances.
        scale_ranges: Per level, the ``(low, high)`` range of ``sqrt(area)`` it learns.
        sigma: Fraction of a box (about its centre) that is its fovea.
        with_deform: Align the classification features with :class:`FeatureAdaption`.
        deform_groups: Offset groups of that deformable conv.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        base_edge_list: Sequence[float] = (16, 32, 64, 128, 256),
        scale_ranges: Sequence[Sequence[float]] = _SCALE_RANGES,
        sigma: float = 0.4,
        with_deform: bool = False,
        deform_groups: int = 4,
        **kwargs: Any,
    ) -> None:
        self.base_edge_list = list(base_edge_list)
        self.scale_ranges = [tuple(r) for r in scale_ranges]
        self.sigma = sigma
        self.with_deform = with_deform
        self.deform_groups = deform_groups
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)

    def _init_layers(self) -> None:
        self.reg_convs = self._tower()
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)
        if not self.with_deform:
            self.cls_convs = self._tower()
            self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
            return
        wide = self.feat_channels * 4
        self.cls_convs = nn.Sequential(
            ConvModule(
                self.feat_channels,
                wide,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                bias=self.norm_cfg is None,
            ),
            ConvModule(
                wide,
                wide,
                1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                bias=self.norm_cfg is None,
            ),
        )
        self.feature_adaption = FeatureAdaption(
            self.feat_channels,
            self.feat_channels,
            kernel_size=3,
            deform_groups=self.deform_groups,
            shape_channels=4,
            detach_shape=False,
        )
        self.conv_cls = nn.Conv2d(wide, self.cls_out_channels, 3, padding=1)

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bbox_pred = self.conv_reg(self.reg_convs(x))
        cls_feat = self.feature_adaption(x, bbox_pred.exp()) if self.with_deform else x
        return self.conv_cls(self.cls_convs(cls_feat)), bbox_pred

    def get_targets(
        self,
        gt_bbox_list: Sequence[torch.Tensor],
        gt_label_list: Sequence[torch.Tensor],
        featmap_sizes: Sequence[Sequence[int]],
        points: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels ``Tensor[M]`` and log box targets ``Tensor[M, 4]`` of the batch, level by
        level and image by image within a level (the order of the flattened predictions)."""
        per_image = [
            fovea_targets_single(
                boxes,
                labels,
                featmap_sizes,
                points,
                strides=[s if isinstance(s, int) else s[0] for s in self.strides],
                base_edges=self.base_edge_list,
                scale_ranges=self.scale_ranges,
                sigma=self.sigma,
                num_classes=self.num_classes,
            )
            for boxes, labels in zip(gt_bbox_list, gt_label_list, strict=True)
        ]
        levels = range(len(featmap_sizes))
        labels = torch.cat([p[0][lv].flatten() for lv in levels for p in per_image])
        targets = torch.cat([p[1][lv].reshape(-1, 4) for lv in levels for p in per_image])
        return labels, targets

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls`` and ``loss_bbox`` (scalars; ignore boxes unused, as in v2).

        Raises:
            ValueError: ``gt_labels`` is missing.
        """
        if gt_labels is None:
            raise InvalidArgumentError("FoveaHead needs gt_labels")
        featmap_sizes = self._featmap_sizes(cls_scores)
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype, device=bbox_preds[0].device
        )
        num_imgs = cls_scores[0].size(0)
        flat_cls = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for s in cls_scores]
        )
        flat_bbox = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, 4) for b in bbox_preds])
        labels, targets = self.get_targets(gt_bboxes, gt_labels, featmap_sizes, points)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().view(-1)
        num_pos = len(pos)
        loss_cls = self.loss_cls(flat_cls, labels, avg_factor=num_pos + num_imgs)
        if num_pos > 0:
            pos_targets = targets[pos]
            loss_bbox = self.loss_bbox(
                flat_bbox[pos], pos_targets, torch.ones_like(pos_targets), avg_factor=num_pos
            )
        else:
            loss_bbox = flat_bbox.new_tensor(0.0)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)

    # ------------------------------------------------------------------- test
    def _flat_bbox_pred(self, bbox_pred: torch.Tensor, level: int) -> torch.Tensor:
        """The level's distances ``base_len * exp(pred)`` as rows ``[H*W, 4]``."""
        return bbox_pred.permute(1, 2, 0).reshape(-1, 4).exp() * self.base_edge_list[level]

    def _decode_bboxes(
        self, priors: torch.Tensor, bbox_pred: torch.Tensor, max_shape: Any
    ) -> torch.Tensor:
        """Boxes from the points and distances, clamped to ``[0, W - 1]`` and ``[0, H - 1]``."""
        x, y = priors[:, 0], priors[:, 1]
        h, w = max_shape[0], max_shape[1]
        return torch.stack(
            [
                (x - bbox_pred[:, 0]).clamp(min=0, max=w - 1),
                (y - bbox_pred[:, 1]).clamp(min=0, max=h - 1),
                (x + bbox_pred[:, 2]).clamp(min=0, max=w - 1),
                (y + bbox_pred[:, 3]).clamp(min=0, max=h - 1),
            ],
            -1,
        )
