"""RoI extractors (v2): ``SingleRoIExtractor`` pools each RoI from the FPN level that matches
its scale; ``GenericRoIExtractor`` pools it from every level and sums or concatenates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.layers import apply_init_cfg
from detforge.ops import RoIAlign, RoIPool, SimpleRoIAlign
from detforge.registry import MODELS, Cfg

__all__ = ["GenericRoIExtractor", "SingleRoIExtractor"]

_ROI_LAYERS = {"RoIAlign": RoIAlign, "RoIPool": RoIPool, "SimpleRoIAlign": SimpleRoIAlign}


@MODELS.register_module()
class SingleRoIExtractor(nn.Module):
    """Pool each RoI from one level: ``floor(log2(sqrt(w * h) / finest_scale + 1e-6))``.

    Args:
        roi_layer: ``dict(type='RoIAlign', output_size=7, sampling_ratio=0, aligned=True)`` or
            ``dict(type='RoIPool', output_size=7)``; one layer per level, with
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
    """Pool every RoI from every level and ``'sum'`` or ``'concat'`` the results (v2's GRoIE
    extractor; PointRend's mask extractor with a single level).

    With one input level the RoI layer's output is returned as it is (v2).

    Args:
        roi_layer: As :class:`SingleRoIExtractor` (``SimpleRoIAlign`` for PointRend).
        out_channels: Channels of the output (the sum of the levels' with ``'concat'``).
        featmap_strides: Stride of each input level.
        aggregation: ``'sum'`` or ``'concat'``.
        pre_cfg: Not supported yet (GRoIE's per-level plugin layer).
        post_cfg: Not supported yet (GRoIE's plugin layer after aggregation).
        init_cfg: Accepted for v2 compatibility.

    Example:
        >>> ext = GenericRoIExtractor(roi_layer=dict(type='RoIAlign', output_size=2),
        ...                           out_channels=2, featmap_strides=[1, 2],
        ...                           aggregation='concat')
        >>> ext([torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)],
        ...     torch.tensor([[0., 0., 0., 4., 4.]]))[0, :, 0, 0].tolist()
        [1.0, 0.0]
    """

    def __init__(
        self,
        roi_layer: Mapping[str, Any],
        out_channels: int,
        featmap_strides: Sequence[int],
        aggregation: str = "sum",
        pre_cfg: Cfg | None = None,
        post_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(
            roi_layer=roi_layer,
            out_channels=out_channels,
            featmap_strides=featmap_strides,
            init_cfg=init_cfg,
        )
        if aggregation not in ("sum", "concat"):
            raise ValueError(
                f"GenericRoIExtractor: aggregation must be 'sum' or 'concat', got {aggregation!r}"
            )
        if pre_cfg is not None or post_cfg is not None:
            raise NotImplementedError(
                "GenericRoIExtractor: pre_cfg/post_cfg (GRoIE's plugin layers) are not "
                "supported yet"
            )
        self.aggregation = aggregation

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
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        start = 0
        for level, feat in enumerate(feats):
            level_feats = self.roi_layers[level](feat, rois)
            if self.aggregation == "sum":
                roi_feats = roi_feats + level_feats
            else:
                roi_feats[:, start : start + level_feats.size(1)] = level_feats
            start += level_feats.size(1)
        if self.aggregation == "concat" and start != self.out_channels:
            raise ValueError(
                f"GenericRoIExtractor: the levels concatenate to {start} channels, "
                f"out_channels is {self.out_channels}"
            )
        return roi_feats
