"""ConvModule: sub-module names (state-dict keys), order, bias, padding, init."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import ConvModule, DeformConv2dPack
from detforge.registry import MODELS, build_module


def _keys(m: nn.Module) -> list[str]:
    return list(m.state_dict())


def test_default_is_conv_relu_with_bias() -> None:
    m = ConvModule(3, 4, 3, padding=1)
    assert [n for n, _ in m.named_children()] == ["conv", "activate"]
    assert _keys(m) == ["conv.weight", "conv.bias"]
    assert isinstance(m.activate, nn.ReLU) and m.activate.inplace
    assert m.norm is None and m.with_bias


@pytest.mark.parametrize(
    ("norm_cfg", "name"),
    [(dict(type="BN"), "bn"), (dict(type="GN", num_groups=2), "gn"), (dict(type="SyncBN"), "bn")],
)
def test_norm_named_after_its_type_and_no_bias(norm_cfg: dict, name: str) -> None:
    m = ConvModule(3, 4, 1, norm_cfg=norm_cfg, act_cfg=None)
    assert m.norm_name == name and m.norm is getattr(m, name)
    assert _keys(m)[:3] == ["conv.weight", f"{name}.weight", f"{name}.bias"]
    assert m.conv.bias is None


def test_bias_explicit_with_bn_warns() -> None:
    with pytest.warns(UserWarning, match="Unnecessary conv bias"):
        m = ConvModule(3, 4, 1, bias=True, norm_cfg=dict(type="BN"))
    assert m.conv.bias is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConvModule(3, 4, 1, bias=True, norm_cfg=dict(type="GN", num_groups=2))
    assert ConvModule(3, 4, 1, bias=False).conv.bias is None


def test_order_changes_computation_and_norm_channels() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    m = ConvModule(3, 4, 3, padding=1, norm_cfg=dict(type="BN"), order=("conv", "norm", "act"))
    m.eval()
    torch.testing.assert_close(m(x), F.relu(m.bn(m.conv(x))))
    torch.testing.assert_close(m(x, activate=False), m.bn(m.conv(x)))
    torch.testing.assert_close(m(x, norm=False), F.relu(m.conv(x)))

    pre = ConvModule(3, 4, 3, padding=1, norm_cfg=dict(type="BN"), order=("norm", "act", "conv"))
    pre.eval()
    assert pre.bn.num_features == 3  # the norm sees the input channels
    torch.testing.assert_close(pre(x), pre.conv(F.relu(pre.bn(x))))
    act_first = ConvModule(3, 4, 1, act_cfg=dict(type="ReLU"), order=("act", "conv", "norm"))
    torch.testing.assert_close(act_first(x), act_first.conv(F.relu(x)))


def test_bad_order_and_bias() -> None:
    with pytest.raises(ValueError, match="order"):
        ConvModule(3, 4, 1, order=("conv", "norm"))
    with pytest.raises(ValueError, match="order"):
        ConvModule(3, 4, 1, order=("conv", "conv", "act"))
    with pytest.raises(ValueError, match="bias"):
        ConvModule(3, 4, 1, bias="yes")


def test_inplace_only_for_activations_that_take_it() -> None:
    assert ConvModule(3, 4, 1, inplace=False).activate.inplace is False
    assert ConvModule(3, 4, 1, act_cfg=dict(type="LeakyReLU")).activate.inplace is True
    for name in ("Sigmoid", "Tanh", "Swish", "HSigmoid", "GELU", "PReLU", "Clamp"):
        m = ConvModule(3, 4, 1, act_cfg=dict(type=name))
        assert m(torch.randn(1, 3, 2, 2)).shape == (1, 4, 2, 2)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "zero"])
def test_explicit_padding_modes(mode: str) -> None:
    m = ConvModule(2, 2, 3, padding=1, act_cfg=None, padding_mode=mode)
    assert m.conv.padding == (0, 0) and m.padding == 1
    assert _keys(m) == ["conv.weight", "conv.bias"]  # the padding layer has no parameters
    x = torch.randn(1, 2, 5, 5)
    torch_mode = "constant" if mode == "zero" else mode
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode=torch_mode), m.conv.weight, m.conv.bias)
    torch.testing.assert_close(m(x), expected)


def test_circular_padding_uses_the_conv() -> None:
    m = ConvModule(1, 1, 3, padding=1, act_cfg=None, padding_mode="circular")
    x = torch.randn(1, 1, 4, 4)
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), m.conv.weight, m.conv.bias)
    torch.testing.assert_close(m(x), expected)


def test_spectral_norm() -> None:
    m = ConvModule(3, 4, 3, with_spectral_norm=True)
    assert "conv.weight_orig" in _keys(m)


def test_exported_conv_attributes() -> None:
    m = ConvModule(4, 8, 3, stride=2, padding=1, dilation=1, groups=2)
    assert (m.in_channels, m.out_channels, m.kernel_size, m.stride) == (4, 8, (3, 3), (2, 2))
    assert (m.groups, m.transposed, m.output_padding) == (2, False, (0, 0))


def test_init_is_kaiming_fan_out_and_norm_one() -> None:
    torch.manual_seed(0)
    m = ConvModule(64, 128, 3, norm_cfg=dict(type="BN"))
    std = math.sqrt(2.0 / (128 * 9))
    assert abs(m.conv.weight.std().item() / std - 1) < 0.03
    assert torch.all(m.bn.weight == 1) and torch.all(m.bn.bias == 0)
    leaky = ConvModule(64, 128, 3, act_cfg=dict(type="LeakyReLU", negative_slope=0.5))
    gain = math.sqrt(2.0 / (1 + 0.5**2))
    assert abs(leaky.conv.weight.std().item() / (gain / math.sqrt(128 * 9)) - 1) < 0.03
    assert torch.all(leaky.conv.bias == 0)


def test_conv_with_own_init_is_left_alone() -> None:
    torch.manual_seed(0)
    m = ConvModule(4, 4, 3, padding=1, conv_cfg=dict(type="DCNv2"))
    assert torch.all(m.conv.conv_offset.weight == 0)
    assert m.conv.weight.abs().max() <= 1 / math.sqrt(4 * 9)  # mmcv's DCNv2 uniform bound
    assert isinstance(
        ConvModule(4, 4, 3, conv_cfg=dict(type="DCN"), bias=False).conv, DeformConv2dPack
    )


def test_registered_in_models() -> None:
    m = build_module(dict(type="ConvModule", in_channels=2, out_channels=3, kernel_size=1), MODELS)
    assert isinstance(m, ConvModule)
