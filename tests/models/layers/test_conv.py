"""Conv and padding builders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detforge.errors import ConfigTypeError, UnknownTypeError
from detforge.models.layers import DeformConv2dPack, ModulatedDeformConv2dPack
from detforge.models.layers.conv import build_conv_layer, build_padding_layer


@pytest.mark.parametrize(
    ("cfg", "cls"),
    [
        (None, nn.Conv2d),
        (dict(type="Conv"), nn.Conv2d),
        (dict(type="Conv2d"), nn.Conv2d),
        (dict(type="DCN"), DeformConv2dPack),
        (dict(type="DCNv2"), ModulatedDeformConv2dPack),
    ],
)
def test_conv_types(cfg: dict | None, cls: type) -> None:
    layer = build_conv_layer(cfg, 4, 8, 3, stride=2, padding=1, bias=False)
    assert type(layer) is cls
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (4, 8, (3, 3))
    assert layer.stride == (2, 2) and layer.padding == (1, 1)
    assert layer(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)


def test_conv1d_conv3d() -> None:
    assert isinstance(build_conv_layer(dict(type="Conv1d"), 2, 3, 1), nn.Conv1d)
    assert isinstance(build_conv_layer(dict(type="Conv3d"), 2, 3, 1), nn.Conv3d)


def test_cfg_arguments_are_passed_and_cfg_kept() -> None:
    cfg = dict(type="DCN", deform_groups=2)
    layer = build_conv_layer(cfg, 4, 4, 3, padding=1, bias=False)
    assert layer.deform_groups == 2
    assert tuple(layer.conv_offset.weight.shape) == (2 * 2 * 9, 4, 3, 3)
    assert cfg == dict(type="DCN", deform_groups=2)


def test_conv_errors() -> None:
    with pytest.raises(UnknownTypeError, match="conv layers"):
        build_conv_layer(dict(type="Cnv2d"), 1, 1, 1)
    with pytest.raises(TypeError, match="stride"):
        build_conv_layer(dict(type="Conv2d", stride=2), 1, 1, 1, stride=1)
    with pytest.raises(ConfigTypeError):
        build_conv_layer(dict(type="Conv2d", dilatoin=2), 1, 1, 1)


@pytest.mark.parametrize(
    ("name", "mode"), [("zero", "constant"), ("reflect", "reflect"), ("replicate", "replicate")]
)
def test_padding_layers(name: str, mode: str) -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    layer = build_padding_layer(dict(type=name), 2)
    torch.testing.assert_close(layer(x), nn.functional.pad(x, (2, 2, 2, 2), mode=mode))
