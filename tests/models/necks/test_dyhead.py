"""DyHead neck and DyReLU (golden outputs from MMDetection: test_dyhead_golden.py)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers.dyrelu import DyReLU
from detforge.models.necks.dyhead import DyHead, DyHeadBlock, _as_mmcv_reads
from detforge.registry import MODELS


def test_keys_and_shapes() -> None:
    neck = MODELS.build(dict(type="DyHead", in_channels=16, out_channels=16, num_blocks=2)).eval()
    keys = list(neck.state_dict())
    for key in (
        "dyhead_blocks.0.spatial_conv_high.conv.weight",
        "dyhead_blocks.0.spatial_conv_low.norm.weight",
        "dyhead_blocks.0.spatial_conv_offset.weight",
        "dyhead_blocks.0.scale_attn_module.1.weight",
        "dyhead_blocks.1.task_attn_module.conv1.conv.weight",
        "dyhead_blocks.1.task_attn_module.conv2.conv.bias",
    ):
        assert key in keys
    assert "dyhead_blocks.0.spatial_conv_mid.conv.bias" not in keys  # GN after the conv
    assert neck.dyhead_blocks[1].spatial_conv_mid.conv.weight.shape == (16, 16, 3, 3)
    feats = [torch.rand(1, 16, 13, 9), torch.rand(1, 16, 7, 5), torch.rand(1, 16, 4, 3)]
    outs = neck(feats)
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(1, 16, 13, 9), (1, 16, 7, 5), (1, 16, 4, 3)]
    with pytest.raises(KeyError, match="init_cfg must be None"):
        DyHead(in_channels=16, out_channels=16, init_cfg=dict(type="Normal"))


def test_zero_init_offset() -> None:
    assert DyHeadBlock(16, 16).spatial_conv_offset.weight.abs().sum() == 0
    assert DyHeadBlock(16, 16, zero_init_offset=False).spatial_conv_offset.weight.abs().sum() > 0


def test_mmcv_reads_the_first_values_of_each_sample() -> None:
    values = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    out = _as_mmcv_reads(values, (2, 2))
    assert out.shape == (2, 3, 2, 2)
    assert out[1].flatten().tolist() == list(range(48, 60))  # sample 1 starts at 3*16
    assert _as_mmcv_reads(values, (4, 4)) is values or torch.equal(
        _as_mmcv_reads(values, (4, 4)), values
    )
    with pytest.raises(ValueError, match="larger"):
        _as_mmcv_reads(values, (5, 4))


def test_dyrelu_is_max_of_two_affine_maps() -> None:
    torch.manual_seed(0)
    layer = DyReLU(4, ratio=2).eval()
    x = torch.randn(2, 4, 3, 3)
    hidden = torch.relu(layer.conv1.conv(x.mean((2, 3), keepdim=True)))
    coeffs = ((layer.conv2.conv(hidden) + 3) / 6).clamp(0, 1) - 0.5
    a1, b1, a2, b2 = coeffs.split(4, dim=1)
    expected = torch.maximum(x * (2 * a1 + 1) + b1, x * 2 * a2 + b2)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    with pytest.raises(TypeError, match="two dicts"):
        DyReLU(4, act_cfg=[dict(type="ReLU")])
