"""RoI extractors (v2): ``SingleRoIExtractor`` pools each RoI from the FPN level that matches its
scale, ``GenericRoIExtractor`` (GRoIE; PointRend's mask extractor with one level) from every
level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import apply_init_cfg, build_plugin_layer
from detforge.ops import (
    DeformRoIPoolPack,
    ModulatedDeformRoIPoolPack,
    RoIAlign,
    RoIPool,
    SimpleRoIAlign,
)
from detforge.registry import MODELS

__all__ = ["GenericRoIExtractor", "SingleRoIExtractor"]

_ROI_LAYERS: dict[str, type[nn.Module]] = {
    "RoIAlign": RoIAlign,
    "RoIPool": RoIPool,
    "DeformRoIPoolPack": DeformRoIPoolPack,
    "ModulatedDeformRoIPoolPack": ModulatedDeformRoIPoolPack,
    "SimpleRoIAlign": SimpleRoIAlign,
}


@MODELS.register_module()
class SingleRoIExtractor(nn.Module):
    """Pool each RoI from one level: ``floor(log2(sqrt(w * h) / finest_scale + 1e-6))``.

    Args:
        roi_layer: ``dict(type='RoIAlign', output_size=7, sampling_ratio=0, aligned=True)``,
            ``dict(type='RoIPool', output_size=7)`` or the deformable
            ``dict(type='DeformRoIPoolPack' | 'ModulatedDeformRoIPoolPack', output_size=7,
            output_channels=256)``; one layer per level (each deformable one with its own
            offset predictor, keys ``roi_layers.{i}.offset_fc.*``), with
            ``spatial_scale = 1 / stride``.
        out_channels: Channels of the features.
        featmap_strides: Stride of each input level.
        finest_scale: RoIs smaller than ``2 * finest_scale`` go to the first level.
        init_cfg: Accepted for v2 compatibility.
    """

    def __init__(
        self,
        roi_layer: Mapping[str, Any],
        out_channels: int,
        featmap_strides: Sequence[int],
        finest_scale: int = 56,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        args = dict(roi_layer)
        kind = args.pop("type")
        if kind not in _ROI_LAYERS:
            raise KeyError(f"roi_layer type {kind!r} is not supported (use {list(_ROI_LAYERS)})")
        self.roi_layers = nn.ModuleList(
            [_ROI_LAYERS[kind](spatial_scale=1 / s, **args) for s in featmap_strides]
        )
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides)
        self.finest_scale = finest_scale
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    @property
    def num_inputs(self) -> int:
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: torch.Tensor, num_levels: int) -> torch.Tensor:
        """Level index of each RoI ``[K, 5]`` (batch index, x1, y1, x2, y2)."""
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=num_levels - 1).long()

    def roi_rescale(self, rois: torch.Tensor, scale_factor: float) -> torch.Tensor:
        """Scale RoIs about their centres (v2's ``roi_scale_factor``)."""
        cx = (rois[:, 1] + rois[:, 3]) * 0.5
        cy = (rois[:, 2] + rois[:, 4]) * 0.5
        w = (rois[:, 3] - rois[:, 1]) * scale_factor
        h = (rois[:, 4] - rois[:, 2]) * scale_factor
        return torch.stack([rois[:, 0], cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5], -1)

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        rois: torch.Tensor,
        roi_scale_factor: float | None = None,
    ) -> torch.Tensor:
        """``Tensor[K, out_channels, *output_size]`` for ``rois [K, 5]``."""
        out_size: tuple[int, int] = tuple(self.roi_layers[0].output_size)  # type: ignore[arg-type]
        num_levels = len(feats)
        roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels, *out_size)
        if num_levels == 1:
            if len(rois) == 0:
                return roi_feats
            single: torch.Tensor = self.roi_layers[0](feats[0], rois)
            return single
        target_levels = self.map_roi_levels(rois, num_levels)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        for level in range(num_levels):
            inds = (target_levels == level).nonzero(as_tuple=False).squeeze(1)
            if inds.numel() > 0:
                roi_feats[inds] = self.roi_layers[level](feats[level], rois[inds])
            else:
                # keep every level in the autograd graph (DDP needs every parameter used)
                roi_feats = roi_feats + feats[level].sum() * 0.0
        return roi_feats


@MODELS.register_module()
class GenericRoIExtractor(SingleRoIExtractor):
    """GRoIE (Rossi et al., "A novel Region of Interest Extraction Layer for Instance
    Segmentation", ICPR 2020; v2): pool every RoI from *every* level and aggregate.

    Each level's pooled features go through ``pre_module`` (one module shared by the levels)
    and are summed (``aggregation='sum'``) or concatenated along the channels (``'concat'``:
    ``out_channels`` must be the levels' channels together); ``post_module`` then processes
    the result. With one level the features are that level's, without pre/post modules.

    Args:
        aggregation: ``'sum'`` or ``'concat'``.
        pre_cfg: Plugin layer config (``ConvModule``, ``GeneralizedAttention``, ...) applied to
            each level's features, or ``None``.
        post_cfg: Plugin layer config applied to the aggregate, or ``None``.
        **kwargs: :class:`SingleRoIExtractor`'s arguments (``finest_scale`` is unused).
    """

    def __init__(
        self,
        aggregation: str = "sum",
        pre_cfg: Mapping[str, Any] | None = None,
        post_cfg: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if aggregation not in ("sum", "concat"):
            raise InvalidArgumentError(
                f"GenericRoIExtractor: aggregation must be 'sum' or 'concat', got {aggregation!r}"
            )
        self.aggregation = aggregation
        self.pre_module: nn.Module | None = None
        self.post_module: nn.Module | None = None
        if post_cfg is not None:
            self.post_module = build_plugin_layer(post_cfg, "_post_module")[1]
        if pre_cfg is not None:
            self.pre_module = build_plugin_layer(pre_cfg, "_pre_module")[1]

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        rois: torch.Tensor,
        roi_scale_factor: float | None = None,
    ) -> torch.Tensor:
        """``Tensor[K, out_channels, *output_size]`` for ``rois [K, 5]``."""
        if len(feats) == 1:
            single: torch.Tensor = self.roi_layers[0](feats[0], rois)
            return single
        out_size: tuple[int, int] = tuple(self.roi_layers[0].output_size)  # type: ignore[arg-type]
        roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels, *out_size)
        if roi_feats.shape[0] == 0:
            return roi_feats
        total = sum(f.size(1) for f in feats)
        if self.aggregation == "concat" and total != self.out_channels:
            raise InvalidArgumentError(
                f"GenericRoIExtractor: the levels' features have {total} channels together, "
                f"out_channels is {self.out_channels}"
            )
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        start = 0
        for level, feat in enumerate(feats):
            level_feats = self.roi_layers[level](feat, rois)
            end = start + level_feats.size(1)
            if self.pre_module is not None:
                level_feats = self.pre_module(level_feats)
            if self.aggregation == "sum":
                roi_feats = roi_feats + level_feats
            else:
                roi_feats[:, start:end] = level_feats
            start = end
        if self.post_module is not None:
            roi_feats = self.post_module(roi_feats)
        return roi_feats
