"""``GridHead``: Grid R-CNN's grid-point head (Lu et al., CVPR 2019; Grid R-CNN Plus), as v2.

A positive RoI is seen on a ``roi_feat_size`` (14) map covering the RoI enlarged 2x about its
centre. ``num_convs`` convs (the first with stride 2) give ``grid_points`` (9) groups of
``point_feat_channels``; each group is fused with its 4-neighbours' groups through 5x5
depth-wise + 1x1 convs, twice (first order on the convs' output, second order on the first
order's); two grouped transposed convs then predict one heatmap per point at
``whole_map_size / 2`` (``4 * roi_feat_size / 2`` = 28), each heatmap covering only the half of
the enlarged RoI where its point can lie (``sub_regions``, Grid R-CNN Plus).

Numerics (v2):

- targets: point ``j`` of an ``s x s`` grid (``s = sqrt(grid_points)``, ``j = x_idx * s +
  y_idx``) is the ground truth box's point at ``(x_idx / (s - 1), y_idx / (s - 1))`` of its
  extent; it marks every cell within ``pos_radius`` (Euclidean) of
  ``int((p - enlarged_x1) / enlarged_w * whole_map_size)`` in the full-size map, which is
  cropped to the point's sub-region. RoIs whose enlarged width or height is at most ``s``
  pixels get no positive cell. Loss: sigmoid cross-entropy (``loss_grid``) of the fused and
  of the unfused heatmaps (training runs the deconvs on the unfused features too), summed;
- boxes: each heatmap's sigmoid maximum gives the point's cell ``(x, y)`` (plus its
  sub-region's offset), at ``(x + 0.5) / w * enlarged_w + enlarged_x1``; each box edge is the
  score-weighted mean of its ``s`` points' coordinates; the class score is kept. The edges
  are not clipped to the image (v2's clamp acts on a copy, MMDetection 3 keeps that).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.registry import MODELS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta

__all__ = ["GridHead", "grid_sub_regions", "grid_targets"]

_GRID_LOSS: Cfg = MappingProxyType(dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=15))
_GN36: Cfg = MappingProxyType(dict(type="GN", num_groups=36))
_GRID_INIT: Any = (
    MappingProxyType(dict(type="Kaiming", layer=["Conv2d", "Linear"])),
    MappingProxyType(
        dict(
            type="Normal",
            layer="ConvTranspose2d",
            std=0.001,
            override=dict(type="Normal", name="deconv2", std=0.001, bias=-np.log(0.99 / 0.01)),
        )
    ),
)


def grid_sub_regions(grid_points: int, whole_map_size: int) -> list[tuple[int, int, int, int]]:
    """Per point, ``(x1, y1, x2, y2)`` of its half-size heatmap in the whole map (v2).

    Example:
        >>> grid_sub_regions(9, 56)[:3]
        [(0, 0, 28, 28), (0, 14, 28, 42), (0, 28, 28, 56)]
    """
    size = int(np.sqrt(grid_points))
    half = whole_map_size // 4 * 2  # v2: 2 * quarter, smaller than half for odd quarters

    def start(idx: int) -> int:
        if idx == 0:
            return 0
        if idx == size - 1:
            return half
        return max(int((idx / (size - 1) - 0.25) * whole_map_size), 0)

    regions = []
    for i in range(grid_points):
        x1, y1 = start(i // size), start(i % size)
        regions.append((x1, y1, x1 + half, y1 + half))
    return regions


def _enlarge(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes enlarged 2x about their centres."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return torch.cat([boxes[:, :2] - wh / 2, boxes[:, 2:] + wh / 2], dim=1)


def grid_targets(
    pos_bboxes: torch.Tensor,
    pos_gt_bboxes: torch.Tensor,
    grid_points: int,
    whole_map_size: int,
    pos_radius: int,
) -> torch.Tensor:
    """``Tensor[R, grid_points, half, half]`` heatmap targets (see the module docstring).

    Args:
        pos_bboxes: ``Tensor[R, 4]`` positive RoIs (as seen by the head).
        pos_gt_bboxes: ``Tensor[R, 4]`` their ground truths.
        grid_points: Points of the grid (a square number).
        whole_map_size: Side of the full-size target map.
        pos_radius: Radius of each point's positive disc, in cells.

    Example:
        >>> t = grid_targets(torch.tensor([[0., 0., 40., 40.]]), torch.tensor([[0., 0., 40., 40.]]),
        ...                  9, 56, 1)
        >>> t.shape, int(t[0, 0].sum()), t[0, 0, 14, 14].item()
        (torch.Size([1, 9, 28, 28]), 5, 1.0)
    """
    if pos_bboxes.shape != pos_gt_bboxes.shape:
        raise InvalidArgumentError(
            f"grid_targets: {tuple(pos_bboxes.shape)} RoIs for {tuple(pos_gt_bboxes.shape)} "
            "ground truths"
        )
    size = int(np.sqrt(grid_points))
    enlarged = _enlarge(pos_bboxes.cpu())
    gts = pos_gt_bboxes.cpu()
    widths = enlarged[:, 2] - enlarged[:, 0]
    heights = enlarged[:, 3] - enlarged[:, 1]
    targets = torch.zeros(len(enlarged), grid_points, whole_map_size, whole_map_size)
    factors = [
        (1 - (j // size) / (size - 1), 1 - (j % size) / (size - 1)) for j in range(grid_points)
    ]
    r2 = pos_radius**2
    for i in range(len(enlarged)):
        if widths[i] <= size or heights[i] <= size:
            continue
        for j, (fx, fy) in enumerate(factors):
            px = fx * gts[i, 0] + (1 - fx) * gts[i, 2]
            py = fy * gts[i, 1] + (1 - fy) * gts[i, 3]
            cx = int((px - enlarged[i, 0]) / widths[i] * whole_map_size)
            cy = int((py - enlarged[i, 1]) / heights[i] * whole_map_size)
            for x in range(max(cx - pos_radius, 0), min(cx + pos_radius + 1, whole_map_size)):
                for y in range(max(cy - pos_radius, 0), min(cy + pos_radius + 1, whole_map_size)):
                    if (x - cx) ** 2 + (y - cy) ** 2 <= r2:
                        targets[i, j, y, x] = 1
    regions = grid_sub_regions(grid_points, whole_map_size)
    sub = [targets[:, [j], y1:y2, x1:x2] for j, (x1, y1, x2, y2) in enumerate(regions)]
    return torch.cat(sub, dim=1).to(pos_bboxes.device)


def _neighbours(size: int) -> list[tuple[int, ...]]:
    """Each point's 4-neighbours (left, up, down, right), ``point = column * size + row``."""
    out = []
    for i in range(size):
        for j in range(size):
            near = []
            if i > 0:
                near.append((i - 1) * size + j)
            if j > 0:
                near.append(i * size + j - 1)
            if j < size - 1:
                near.append(i * size + j + 1)
            if i < size - 1:
                near.append((i + 1) * size + j)
            out.append(tuple(near))
    return out


@MODELS.register_module()
class GridHead(nn.Module):
    """Grid R-CNN's point head (see the module docstring).

    Args:
        grid_points: Points per RoI (a square number, at least 4).
        num_convs: Convs before the fusion (the first has stride 2).
        roi_feat_size: Side of the (square) RoI features.
        in_channels: Channels of the RoI features.
        conv_kernel_size: Kernel of the convs.
        point_feat_channels: Channels per point.
        deconv_kernel_size: Kernel of the two transposed convs.
        class_agnostic: Accepted for v2 compatibility (the points are class-agnostic).
        loss_grid: Heatmap loss (sigmoid cross-entropy, weight 15).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config of the convs (GN with 36 groups).
        init_cfg: Kaiming for convs and linears, Normal(0.001) for the transposed convs, the
            last one's bias at the 0.01 prior.

    Raises:
        ValueError: ``grid_points`` is not a square of at least 4, ``roi_feat_size`` is not
            an int, or the GN groups do not divide the channels.
    """

    def __init__(
        self,
        grid_points: int = 9,
        num_convs: int = 8,
        roi_feat_size: int = 14,
        in_channels: int = 256,
        conv_kernel_size: int = 3,
        point_feat_channels: int = 64,
        deconv_kernel_size: int = 4,
        class_agnostic: bool = False,
        loss_grid: Cfg | nn.Module = _GRID_LOSS,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = _GN36,
        init_cfg: Any = _GRID_INIT,
    ) -> None:
        super().__init__()
        self.grid_points = grid_points
        self.num_convs = num_convs
        self.roi_feat_size = roi_feat_size
        self.in_channels = in_channels
        self.conv_kernel_size = conv_kernel_size
        self.point_feat_channels = point_feat_channels
        self.conv_out_channels = point_feat_channels * grid_points
        self.class_agnostic = class_agnostic
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.init_cfg = plain_cfg(init_cfg)
        gn_groups = (self.norm_cfg or {}).get("num_groups", 1)
        if self.conv_out_channels % gn_groups:
            raise InvalidArgumentError(
                f"GridHead: {self.conv_out_channels} channels (point_feat_channels * "
                f"grid_points) are not divisible by {gn_groups} GN groups"
            )
        self.grid_size = int(np.sqrt(grid_points))
        if grid_points < 4 or self.grid_size**2 != grid_points:
            raise InvalidArgumentError(
                f"GridHead: grid_points must be a square >= 4, got {grid_points}"
            )
        if not isinstance(roi_feat_size, int):
            raise InvalidArgumentError("GridHead: only square RoI features (an int roi_feat_size)")
        self.whole_map_size = roi_feat_size * 4
        self.sub_regions = grid_sub_regions(grid_points, self.whole_map_size)
        padding = (conv_kernel_size - 1) // 2
        self.convs = nn.Sequential(
            *[
                ConvModule(
                    in_channels if i == 0 else self.conv_out_channels,
                    self.conv_out_channels,
                    conv_kernel_size,
                    stride=2 if i == 0 else 1,
                    padding=padding,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    bias=True,
                )
                for i in range(num_convs)
            ]
        )
        self.deconv1 = self._deconv(self.conv_out_channels, deconv_kernel_size)
        self.norm1 = nn.GroupNorm(grid_points, self.conv_out_channels)
        self.deconv2 = self._deconv(grid_points, deconv_kernel_size)
        self.neighbor_points = _neighbours(self.grid_size)
        self.num_edges = sum(len(p) for p in self.neighbor_points)
        self.forder_trans = self._transitions()
        self.sorder_trans = self._transitions()
        self.loss_grid = build_module(loss_grid, MODELS)
        self.test_mode = False  # v2 sets it; nothing reads it

    def _deconv(self, out_channels: int, kernel_size: int) -> nn.ConvTranspose2d:
        """A 2x grouped (one group per point) transposed conv."""
        padding = (kernel_size - 2) // 2
        return nn.ConvTranspose2d(
            self.conv_out_channels, out_channels, kernel_size, 2, padding, groups=self.grid_points
        )

    def _transitions(self) -> nn.ModuleList:
        """Per point, per neighbour: a 5x5 depth-wise conv and a 1x1 conv."""
        c = self.point_feat_channels
        return nn.ModuleList(
            nn.ModuleList(
                nn.Sequential(nn.Conv2d(c, c, 5, stride=1, padding=2, groups=c), nn.Conv2d(c, c, 1))
                for _ in neighbours
            )
            for neighbours in self.neighbor_points
        )

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def _heatmap(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv2(F.relu(self.norm1(self.deconv1(x)), inplace=True))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``fused`` (and, training, ``unfused``) heatmaps ``Tensor[R, grid_points, 2s, 2s]``
        for RoI features ``Tensor[R, in_channels, s, s]``."""
        if x.shape[-1] != self.roi_feat_size or x.shape[-2] != self.roi_feat_size:
            raise InvalidArgumentError(
                f"GridHead: RoI features must be {self.roi_feat_size}x{self.roi_feat_size}, "
                f"got {tuple(x.shape[-2:])}"
            )
        x = self.convs(x)
        c = self.point_feat_channels
        groups = [x[:, i * c : (i + 1) * c] for i in range(self.grid_points)]
        first = []
        for i, points in enumerate(self.neighbor_points):
            fused = groups[i]
            for j, p in enumerate(points):
                fused = fused + self.forder_trans[i][j](groups[p])  # type: ignore[index]  # ModuleList of ModuleLists
            first.append(fused)
        second = []
        for i, points in enumerate(self.neighbor_points):
            fused = groups[i]
            for j, p in enumerate(points):
                fused = fused + self.sorder_trans[i][j](first[p])  # type: ignore[index]  # ModuleList of ModuleLists
            second.append(fused)
        heatmap = self._heatmap(torch.cat(second, dim=1))
        unfused = self._heatmap(x) if self.training else heatmap
        return dict(fused=heatmap, unfused=unfused)

    def get_targets(
        self,
        pos_bboxes: Sequence[torch.Tensor],
        pos_gt_bboxes: Sequence[torch.Tensor],
        rcnn_train_cfg: Cfg,
    ) -> torch.Tensor:
        """Heatmap targets of the batch's positive RoIs (:func:`grid_targets`)."""
        return grid_targets(
            torch.cat(list(pos_bboxes)),
            torch.cat(list(pos_gt_bboxes)),
            self.grid_points,
            self.whole_map_size,
            int(rcnn_train_cfg["pos_radius"]),
        )

    def loss(
        self, grid_pred: dict[str, torch.Tensor], grid_targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss_grid``: the fused and the unfused heatmaps' losses, summed."""
        fused = self.loss_grid(grid_pred["fused"], grid_targets)
        unfused = self.loss_grid(grid_pred["unfused"], grid_targets)
        return dict(loss_grid=fused + unfused)

    def get_bboxes(
        self, det_bboxes: torch.Tensor, grid_pred: torch.Tensor, img_meta: ImgMeta | None = None
    ) -> torch.Tensor:
        """``Tensor[R, 5]``: the detections' boxes moved to the grid points (see the module
        docstring), scores kept. ``img_meta`` is accepted for v2 compatibility."""
        if det_bboxes.shape[0] != grid_pred.shape[0]:
            raise InvalidArgumentError(
                f"GridHead.get_bboxes: {det_bboxes.shape[0]} boxes, {grid_pred.shape[0]} heatmaps"
            )
        scores = det_bboxes[:, [4]]
        boxes = det_bboxes[:, :4]
        prob = grid_pred.sigmoid()
        num, c, h, w = prob.shape
        pred_scores, pos = prob.view(num * c, h * w).max(dim=1)
        xs = (pos % w).view(num, c)
        ys = torch.div(pos, w, rounding_mode="floor").view(num, c)
        offsets = boxes.new_tensor(self.sub_regions, dtype=torch.long)[:, :2]
        xs = xs + offsets[:, 0].to(xs.device)
        ys = ys + offsets[:, 1].to(ys.device)
        pred_scores = pred_scores.view(num, c)
        widths = (boxes[:, 2] - boxes[:, 0]).unsqueeze(-1)
        heights = (boxes[:, 3] - boxes[:, 1]).unsqueeze(-1)
        abs_xs = (xs.float() + 0.5) / w * widths + (boxes[:, 0, None] - widths / 2)
        abs_ys = (ys.float() + 0.5) / h * heights + (boxes[:, 1, None] - heights / 2)
        s = self.grid_size
        edges = (
            (abs_xs, list(range(s))),  # x1: the first column
            (abs_ys, [i * s for i in range(s)]),  # y1: the first row
            (abs_xs, [self.grid_points - s + i for i in range(s)]),  # x2: the last column
            (abs_ys, [(i + 1) * s - 1 for i in range(s)]),  # y2: the last row
        )
        coords = [
            (values[:, inds] * pred_scores[:, inds]).sum(dim=1, keepdim=True)
            / pred_scores[:, inds].sum(dim=1, keepdim=True)
            for values, inds in edges
        ]
        return torch.cat([*coords, scores], dim=1)
