"""``ConvWS`` / ``ConvAWS``: mmcv's outputs on random weights (tests/data/goldens/conv_ws, made by
tools/goldens/conv_ws.py), AWS's loading of plain checkpoints, and the registry names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detforge.models.layers import CONV_LAYERS, ConvAWS2d, ConvWS2d, build_conv_layer
from tests.models.v2_goldens import assert_close, load

SPECS = load("conv_ws", "layers.json")


@pytest.mark.parametrize("key", sorted(SPECS))
def test_layer_matches_mmcv(key: str) -> None:
    spec = dict(SPECS[key])
    cls = {"ConvWS2d": ConvWS2d, "ConvAWS2d": ConvAWS2d}[spec.pop("type")]
    layer = cls(**spec)
    layer.load_state_dict(load("conv_ws", "layers_weights.pt")[key], strict=True)
    with torch.no_grad():
        out = layer(load("conv_ws", "layers_input.pt")["x"])
    assert_close(out, load("conv_ws", "layers_expected.pt")[key], key)


def test_aws_fills_gamma_and_beta_from_a_plain_checkpoint_like_mmcv() -> None:
    expected = load("conv_ws", "layers_expected.pt")
    layer = ConvAWS2d(4, 6, 3, padding=1)
    result = layer.load_state_dict(load("conv_ws", "layers_weights.pt")["aws_from_plain"], False)
    assert len(result.missing_keys) == expected["aws_from_plain_missing"] == 0
    for name, want in expected["aws_from_plain_buffers"].items():
        assert_close(getattr(layer, name), want, name)
    with torch.no_grad():
        out = layer(load("conv_ws", "layers_input.pt")["x"])
    assert_close(out, expected["aws_from_plain"], "aws_from_plain")


def test_aws_keeps_stored_gamma_and_beta() -> None:
    src = ConvAWS2d(2, 3, 1)
    src.weight_gamma.fill_(2.0)
    src.weight_beta.fill_(0.5)
    dst = ConvAWS2d(2, 3, 1)
    dst.load_state_dict(src.state_dict())
    assert torch.equal(dst.weight_gamma, src.weight_gamma)
    assert torch.equal(dst.weight_beta, src.weight_beta)
    # a checkpoint without the weight itself still reports it missing
    result = ConvAWS2d(2, 3, 1).load_state_dict({"bias": torch.zeros(3)}, strict=False)
    assert result.missing_keys == ["weight"]


def test_ws_filters_are_standardised() -> None:
    conv = ConvWS2d(3, 2, 3, bias=False)
    x = torch.randn(1, 3, 3, 3)
    w = conv.weight.view(2, -1)
    std_w = ((w - w.mean(1, keepdim=True)) / (w.std(1, keepdim=True) + 1e-5)).view_as(conv.weight)
    assert torch.allclose(conv(x), nn.functional.conv2d(x, std_w), atol=1e-5)


def test_registered_names() -> None:
    assert isinstance(build_conv_layer(dict(type="ConvWS"), 2, 2, 1), ConvWS2d)
    assert isinstance(build_conv_layer(dict(type="ConvAWS"), 2, 2, 1), ConvAWS2d)
    assert all(name in CONV_LAYERS for name in ("ConvWS", "ConvAWS", "SAC"))
