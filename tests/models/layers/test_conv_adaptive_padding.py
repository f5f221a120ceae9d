"""Conv2dAdaptivePadding: TensorFlow 'SAME' padding (odd pixel bottom/right)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detforge.models.layers import Conv2dAdaptivePadding, build_conv_layer


@pytest.mark.parametrize(("size", "stride"), [((7, 8), 2), ((6, 6), 2), ((5, 9), 1), ((9, 4), 3)])
def test_same_padding_matches_explicit_padding(size: tuple[int, int], stride: int) -> None:
    conv = build_conv_layer(dict(type="Conv2dAdaptivePadding"), 2, 3, 3, stride=stride, padding=1)
    assert isinstance(conv, Conv2dAdaptivePadding) and conv.padding == (0, 0)
    x = torch.rand(1, 2, *size)
    pads = [max((-(-n // stride) - 1) * stride + 3 - n, 0) for n in size]
    ref = F.conv2d(
        F.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2]),
        conv.weight,
        conv.bias,
        stride,
    )
    out = conv(x)
    assert out.shape[-2:] == tuple(-(-n // stride) for n in size)
    torch.testing.assert_close(out, ref)
