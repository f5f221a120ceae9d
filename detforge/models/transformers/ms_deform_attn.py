"""Multi-scale deformable attention (Deformable DETR), in PyTorch with ``grid_sample``.

Every query samples ``num_points`` values per head on each of ``num_levels`` feature maps,
around its reference point, and sums them with softmax weights (over levels × points):

- offsets and weights are linear in ``query + query_pos``; the values are ``value_proj(value)``
  with padded positions zeroed (``key_padding_mask``);
- with 2-d reference points ``(x, y)`` in ``[0, 1]`` of each level, a location is
  ``ref + offset / (W_l, H_l)``; with 4-d boxes ``(cx, cy, w, h)`` it is
  ``ref_xy + offset / num_points * ref_wh / 2``;
- sampling is bilinear with zero padding, ``align_corners=False``, on the grid ``2 * loc - 1``
  (mmcv's ``multi_scale_deformable_attn_pytorch``, which its compiled kernel equals);
- ``out = identity + dropout(output_proj(sum))``.

Keys are mmcv's: ``sampling_offsets``, ``attention_weights``, ``value_proj``, ``output_proj``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import ConfigValueError
from detforge.registry import MODELS

__all__ = ["MultiScaleDeformableAttention", "multi_scale_deformable_attn"]


def multi_scale_deformable_attn(
    value: torch.Tensor,
    spatial_shapes: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted bilinear samples of every level's values.

    Args:
        value: ``[B, sum(H_l * W_l), heads, C_h]`` (levels concatenated row-major).
        spatial_shapes: ``[levels, 2]`` ``(H_l, W_l)``.
        sampling_locations: ``[B, Q, heads, levels, points, 2]`` ``(x, y)`` in ``[0, 1]``.
        attention_weights: ``[B, Q, heads, levels, points]``.

    Returns:
        ``[B, Q, heads * C_h]``.

    Example:
        >>> value = torch.arange(4.).view(1, 4, 1, 1)          # one 2x2 level
        >>> loc = torch.tensor([0.25, 0.75]).view(1, 1, 1, 1, 1, 2)  # pixel (0, 1)'s centre
        >>> multi_scale_deformable_attn(value, torch.tensor([[2, 2]]), loc,
        ...                             torch.ones(1, 1, 1, 1, 1)).tolist()
        [[[2.0]]]
    """
    bs, _, num_heads, channels = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    value_list = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * sampling_locations - 1
    samples = []
    for level, (h, w) in enumerate(shapes):
        value_l = (
            value_list[level].flatten(2).transpose(1, 2).reshape(bs * num_heads, channels, h, w)
        )
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        samples.append(
            F.grid_sample(
                value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    weights = attention_weights.transpose(1, 2).reshape(
        bs * num_heads, 1, num_queries, num_levels * num_points
    )
    output = (torch.stack(samples, dim=-2).flatten(-2) * weights).sum(-1)
    return output.view(bs, num_heads * channels, num_queries).transpose(1, 2).contiguous()


@MODELS.register_module()
class MultiScaleDeformableAttention(nn.Module):
    """mmcv's ``MultiScaleDeformableAttention`` (see the module docstring).

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads (``embed_dims`` must divide by it).
        num_levels: Feature levels.
        num_points: Samples per head and level.
        im2col_step: The compiled kernel's batch step; accepted for v2 configs, unused.
        dropout: Dropout on the output before the residual.
        batch_first: Tokens are ``[B, L, C]`` (else ``[L, B, C]``).
        norm_cfg: Accepted for v2 configs; mmcv does not use it either.
        init_cfg: Unused (:meth:`init_weights` is mmcv's initialisation).

    Raises:
        ConfigValueError: ``embed_dims`` does not divide by ``num_heads``.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        num_heads: int = 8,
        num_levels: int = 4,
        num_points: int = 4,
        im2col_step: int = 64,
        dropout: float = 0.1,
        batch_first: bool = False,
        norm_cfg: Any = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ConfigValueError(
                f"MultiScaleDeformableAttention: embed_dims={embed_dims} does not divide by "
                f"num_heads={num_heads}"
            )
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.batch_first = batch_first
        self.dropout = nn.Dropout(dropout)
        samples = num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dims, samples * 2)
        self.attention_weights = nn.Linear(embed_dims, samples)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's: zero offsets with biases pointing the ``k``-th point of each head ``k``
        steps along the head's direction; zero attention weights; Xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (
            2.0 * math.pi / self.num_heads
        )
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        identity: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        reference_points: torch.Tensor | None = None,
        spatial_shapes: torch.Tensor | None = None,
        level_start_index: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Attend from ``query`` to ``value`` (``key``, ``key_pos`` and masks are unused).

        Args:
            query: ``[Q, B, C]`` (``[B, Q, C]`` with ``batch_first``).
            key: Unused.
            value: ``[V, B, C]``; defaults to ``query``.
            identity: Residual; defaults to ``query``.
            query_pos: Added to ``query`` for the offsets and weights.
            key_padding_mask: ``[B, V]`` true at padded values.
            reference_points: ``[B, Q, levels, 2 or 4]`` normalised.
            spatial_shapes: ``[levels, 2]`` ``(H, W)``.
            level_start_index: Unused (the split follows ``spatial_shapes``).
            kwargs: Ignored (other attention arguments of the layer).
        """
        if reference_points is None or spatial_shapes is None:
            raise ValueError(
                "MultiScaleDeformableAttention needs reference_points and spatial_shapes"
            )
        value = query if value is None else value
        identity = query if identity is None else identity
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
            raise ValueError(
                f"MultiScaleDeformableAttention: {num_value} values for spatial_shapes "
                f"{spatial_shapes.tolist()}"
            )
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(bs, num_query, heads, levels, points, 2)
        weights = self.attention_weights(query).view(bs, num_query, heads, levels * points)
        weights = weights.softmax(-1).view(bs, num_query, heads, levels, points)
        if reference_points.shape[-1] == 2:
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            locations = (
                reference_points[:, :, None, :, None, :]
                + offsets / normalizer[None, None, None, :, None, :]
            )
        elif reference_points.shape[-1] == 4:
            locations = (
                reference_points[:, :, None, :, None, :2]
                + offsets / points * reference_points[:, :, None, :, None, 2:] * 0.5
            )
        else:
            raise ValueError(
                "MultiScaleDeformableAttention: reference_points must end in 2 or 4, got "
                f"{tuple(reference_points.shape)}"
            )
        output = self.output_proj(
            multi_scale_deformable_attn(value, spatial_shapes, locations, weights)
        )
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity
