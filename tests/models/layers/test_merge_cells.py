"""Merge cells (NAS-FPN, NAS-FCOS): resizing rules, binary ops, keys, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detforge.models.layers import ConcatCell, GlobalPoolingCell, SumCell
from detforge.models.layers.merge_cells import resize_to


def test_resize_pools_larger_maps_after_centred_zero_padding() -> None:
    x = torch.arange(1.0, 26.0).reshape(1, 1, 5, 5)
    # 5 -> 3: pad to 6 (0 left/top, 1 right/bottom), then 2x2 max pooling
    want = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 2)
    torch.testing.assert_close(resize_to(x, (3, 3)), want)
    pooled = [[7.0, 9.0, 10.0], [17.0, 19.0, 20.0], [22.0, 24.0, 25.0]]
    assert resize_to(x, (3, 3))[0, 0].tolist() == pooled
    x7 = torch.randn(1, 2, 7, 8)
    torch.testing.assert_close(resize_to(x7, (2, 4)), F.max_pool2d(F.pad(x7, (0, 0, 0, 1)), (4, 2)))


def test_resize_compares_sizes_lexicographically_as_mmcv() -> None:
    x = torch.randn(1, 1, 4, 8)
    # (4, 8) < (5, 2) lexicographically, so mmcv interpolates even though the width shrinks
    torch.testing.assert_close(resize_to(x, (5, 2)), F.interpolate(x, size=(5, 2)))
    same = resize_to(x, (4, 8))
    assert same is x
    up = resize_to(torch.randn(1, 1, 2, 3), (4, 6), mode="bilinear")
    assert up.shape == (1, 1, 4, 6)


def test_cells_combine_as_their_names_say() -> None:
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)
    up_b = F.interpolate(b, size=(4, 4))
    total = SumCell(3, 3, with_out_conv=False)(a, b)
    torch.testing.assert_close(total, a + up_b)
    cat = ConcatCell(3, 3, with_out_conv=False)(a, b, out_size=(4, 4))
    torch.testing.assert_close(cat, torch.cat([a, up_b], dim=1))
    gated = GlobalPoolingCell(with_out_conv=False)(a, b, out_size=(4, 4))
    torch.testing.assert_close(gated, up_b + up_b.mean((2, 3), keepdim=True).sigmoid() * a)


def test_out_conv_and_input_convs() -> None:
    cell = SumCell(4, 4, out_norm_cfg=dict(type="BN"), with_input1_conv=True)
    assert list(cell.state_dict())[:2] == ["out_conv.conv.weight", "out_conv.conv.bias"]
    assert "input1_conv.conv.weight" in cell.state_dict()
    assert not any(k.startswith("input2_conv") for k in cell.state_dict())
    assert cell.out_conv.order == ("act", "conv", "norm") and cell.out_conv.with_bias
    cell.eval()
    a, b = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(cell(a, b), cell.out_conv(cell.input1_conv(a) + b))
    concat = ConcatCell(4, 5, out_conv_cfg=dict(kernel_size=1, padding=0, groups=1, bias=False))
    assert concat.out_conv.conv.weight.shape == (5, 8, 1, 1)


def test_errors_name_the_cell() -> None:
    with pytest.raises(ValueError, match="SumCell: inputs differ"):
        SumCell(2, 2)(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="upsample_mode"):
        SumCell(2, 2, upsample_mode="bicubic")
    with pytest.raises(ValueError, match="needs in_channels"):
        GlobalPoolingCell()
    with pytest.raises(ValueError, match="out_size"):
        SumCell(2, 2)(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), out_size=(2,))
