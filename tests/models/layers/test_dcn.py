"""Deformable convs: mmcv parameter names, zero offsets = plain conv, slow reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from detforge.models.layers import (
    DeformConv2d,
    DeformConv2dPack,
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
)


def _bilinear(img: np.ndarray, y: float, x: float) -> np.ndarray:
    """Zero-padded bilinear sample of ``img [C, H, W]`` at ``(y, x)``."""
    c, h, w = img.shape
    out = np.zeros(c)
    y0, x0 = math.floor(y), math.floor(x)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < h and 0 <= xx < w:
                out += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx]
    return out


def _reference(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None,
    stride: int,
    padding: int,
    dilation: int,
    deform_groups: int,
) -> np.ndarray:
    """Slow DCN: offset channel ``2k`` is dy and ``2k + 1`` dx of kernel position ``k``."""
    xs, off, wt = x.double().numpy(), offset.double().numpy(), weight.double().numpy()
    msk = None if mask is None else mask.double().numpy()
    b, cin = xs.shape[:2]
    cout, _, kh, kw = wt.shape
    ho, wo = off.shape[2:]
    per_group = cin // deform_groups
    out = np.zeros((b, cout, ho, wo))
    for n in range(b):
        for oy in range(ho):
            for ox in range(wo):
                cols = np.zeros((cin, kh, kw))
                for g in range(deform_groups):
                    chans = slice(g * per_group, (g + 1) * per_group)
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            base = 2 * (g * kh * kw + k)
                            py = oy * stride - padding + i * dilation + off[n, base, oy, ox]
                            px = ox * stride - padding + j * dilation + off[n, base + 1, oy, ox]
                            val = _bilinear(xs[n, chans], py, px)
                            if msk is not None:
                                val = val * msk[n, g * kh * kw + k, oy, ox]
                            cols[chans, i, j] = val
                out[n, :, oy, ox] = np.tensordot(wt, cols, axes=([1, 2, 3], [0, 1, 2]))
    return out


def test_parameter_names_match_mmcv() -> None:
    assert list(DeformConv2dPack(4, 8, 3, padding=1).state_dict()) == [
        "weight",
        "conv_offset.weight",
        "conv_offset.bias",
    ]
    assert list(ModulatedDeformConv2dPack(4, 8, 3, padding=1).state_dict()) == [
        "weight",
        "bias",
        "conv_offset.weight",
        "conv_offset.bias",
    ]
    dcn = DeformConv2dPack(4, 8, 3, padding=1, deform_groups=2, groups=2)
    assert tuple(dcn.weight.shape) == (8, 2, 3, 3)
    assert tuple(dcn.conv_offset.weight.shape) == (2 * 2 * 9, 4, 3, 3)
    dcn2 = ModulatedDeformConv2dPack(4, 8, 3, deform_groups=2)
    assert tuple(dcn2.conv_offset.weight.shape) == (3 * 2 * 9, 4, 3, 3)


@pytest.mark.parametrize(("stride", "padding", "dilation"), [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_zero_offsets_equal_plain_conv(stride: int, padding: int, dilation: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 9)
    dcn = DeformConv2dPack(4, 6, 3, stride=stride, padding=padding, dilation=dilation)
    assert torch.all(dcn.conv_offset.weight == 0) and torch.all(dcn.conv_offset.bias == 0)
    plain = F.conv2d(x, dcn.weight, None, stride, padding, dilation)
    torch.testing.assert_close(dcn(x), plain, atol=1e-5, rtol=1e-5)
    # torchvision's op with explicit zero offsets agrees too
    offset = torch.zeros(2, 18, *plain.shape[2:])
    torch.testing.assert_close(
        deform_conv2d(x, offset, dcn.weight, stride=stride, padding=padding, dilation=dilation),
        plain,
        atol=1e-5,
        rtol=1e-5,
    )


def test_dcnv2_at_init_is_half_a_conv_plus_bias() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 7, 7)
    dcn = ModulatedDeformConv2dPack(4, 6, 3, padding=1)
    with torch.no_grad():
        dcn.bias.uniform_(-1, 1)
    expected = 0.5 * F.conv2d(x, dcn.weight, None, 1, 1) + dcn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(dcn(x), expected, atol=1e-5, rtol=1e-5)


def test_grouped_zero_offset_dcn() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 6)
    dcn = DeformConv2dPack(4, 6, 3, padding=1, groups=2, deform_groups=2)
    torch.testing.assert_close(
        dcn(x), F.conv2d(x, dcn.weight, None, 1, 1, 1, 2), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("deform_groups", [1, 2])
def test_random_offsets_match_slow_reference(deform_groups: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 4, 5, 6)
    layer = DeformConv2d(4, 3, 3, padding=1, deform_groups=deform_groups)
    offset = torch.randn(1, deform_groups * 18, 5, 6) * 1.5
    got = layer(x, offset).detach().double().numpy()
    ref = _reference(x, offset, layer.weight.detach(), None, 1, 1, 1, deform_groups)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_modulated_random_offsets_match_slow_reference() -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 2, 6, 5)
    layer = ModulatedDeformConv2d(2, 3, 3, stride=2, padding=1)
    offset = torch.randn(1, 18, 3, 3)
    mask = torch.rand(1, 9, 3, 3)
    got = layer(x, offset, mask).detach().double().numpy()
    ref = _reference(x, offset, layer.weight.detach(), mask, 2, 1, 1, 1)
    ref += layer.bias.detach().double().numpy()[None, :, None, None]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_pack_splits_offset_and_mask_like_mmcv() -> None:
    """``conv_offset`` output = [offsets (2/3 of channels), mask logits (1/3)]."""
    torch.manual_seed(3)
    x = torch.randn(1, 2, 5, 5)
    layer = ModulatedDeformConv2dPack(2, 2, 3, padding=1)
    with torch.no_grad():
        layer.conv_offset.weight.normal_(0, 0.1)
        layer.conv_offset.bias.normal_(0, 0.5)
    raw = layer.conv_offset(x)
    expected = deform_conv2d(
        x, raw[:, :18], layer.weight, layer.bias, padding=1, mask=torch.sigmoid(raw[:, 18:])
    )
    torch.testing.assert_close(layer(x), expected)


def test_init_and_errors() -> None:
    layer = ModulatedDeformConv2dPack(4, 4, 3)
    with torch.no_grad():
        layer.conv_offset.weight.fill_(1.0)
    layer.init_weights()
    assert torch.all(layer.conv_offset.weight == 0) and torch.all(layer.bias == 0)
    assert layer.weight.abs().max() <= 1 / math.sqrt(4 * 9)
    with pytest.raises(ValueError, match="bias"):
        DeformConv2dPack(4, 4, 3, bias=True)
    with pytest.raises(ValueError, match="groups"):
        DeformConv2dPack(4, 6, 3, groups=4)
    with pytest.warns(DeprecationWarning, match="deform_groups"):
        legacy = DeformConv2dPack(4, 4, 3, deformable_groups=2)
    assert legacy.deform_groups == 2
