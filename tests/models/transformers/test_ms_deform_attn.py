"""Multi-scale deformable attention against an explicit bilinear-sampling loop."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.transformers import MultiScaleDeformableAttention, multi_scale_deformable_attn


def _bilinear(img: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """``img [C, H, W]`` at pixel coordinates ``(x, y)`` (centres at ``i + 0.5``), zeros outside."""
    _, h, w = img.shape
    x0, y0 = math.floor(x - 0.5), math.floor(y - 0.5)
    out = torch.zeros(img.shape[0], dtype=img.dtype)
    for yi in (y0, y0 + 1):
        for xi in (x0, x0 + 1):
            if 0 <= xi < w and 0 <= yi < h:
                weight = (1 - abs(x - 0.5 - xi)) * (1 - abs(y - 0.5 - yi))
                out += weight * img[:, yi, xi]
    return out


def test_equals_an_explicit_loop() -> None:
    torch.manual_seed(0)
    shapes = torch.tensor([[3, 5], [2, 2]])
    bs, heads, channels, queries, points = 2, 2, 3, 4, 3
    value = torch.randn(bs, 19, heads, channels, dtype=torch.float64)
    # locations in [-0.3, 1.3]: some samples fall partly or wholly outside the map
    locations = torch.rand(bs, queries, heads, 2, points, 2, dtype=torch.float64) * 1.6 - 0.3
    weights = torch.rand(bs, queries, heads, 2, points, dtype=torch.float64)
    got = multi_scale_deformable_attn(value, shapes, locations, weights)
    assert got.shape == (bs, queries, heads * channels)
    starts = [0, 15]
    for b in range(bs):
        for q in range(queries):
            for m in range(heads):
                want = torch.zeros(channels, dtype=torch.float64)
                for lvl, (h, w) in enumerate(shapes.tolist()):
                    level = value[b, starts[lvl] : starts[lvl] + h * w, m].T.reshape(channels, h, w)
                    for p in range(points):
                        x, y = locations[b, q, m, lvl, p].tolist()
                        want += weights[b, q, m, lvl, p] * _bilinear(level, x * w, y * h)
                torch.testing.assert_close(got[b, q, m * channels : (m + 1) * channels], want)


def test_module_init_and_shapes() -> None:
    attn = MultiScaleDeformableAttention(embed_dims=16, num_heads=4, num_levels=2, num_points=2)
    bias = attn.sampling_offsets.bias.view(4, 2, 2, 2)
    # head 0 points along +x, head 1 along +y; point k is k + 1 steps out, on every level
    assert bias[0, 1, 1].tolist() == [2.0, 0.0]
    assert bias[1, 0, 0].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)
    assert not attn.attention_weights.weight.any()
    shapes = torch.tensor([[4, 4], [2, 2]])
    query = torch.randn(6, 1, 16)  # [Q, B, C], sequence first
    value = torch.randn(20, 1, 16)
    refs = torch.rand(1, 6, 2, 2)
    out = attn(query, value=value, reference_points=refs, spatial_shapes=shapes)
    assert out.shape == (6, 1, 16)
    boxes = torch.cat([refs, torch.full_like(refs, 0.2)], -1)
    assert (
        attn(query, value=value, reference_points=boxes, spatial_shapes=shapes).shape == out.shape
    )
    with pytest.raises(ValueError, match="19 values"):
        attn(query, value=value[:19], reference_points=refs, spatial_shapes=shapes)
