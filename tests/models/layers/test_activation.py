"""Activation builder: registered names, values of the custom activations, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detforge.errors import ConfigKeyError, ConfigTypeError, UnknownTypeError
from detforge.models.layers.activation import (
    ACTIVATION_LAYERS,
    Clamp,
    HSigmoid,
    Swish,
    accepts_inplace,
    build_activation_layer,
)

X = torch.tensor([-5.0, -3.0, -1.0, 0.0, 0.5, 1.0, 3.0, 5.0])


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ReLU", nn.ReLU),
        ("LeakyReLU", nn.LeakyReLU),
        ("PReLU", nn.PReLU),
        ("RReLU", nn.RReLU),
        ("ReLU6", nn.ReLU6),
        ("ELU", nn.ELU),
        ("Sigmoid", nn.Sigmoid),
        ("Tanh", nn.Tanh),
        ("GELU", nn.GELU),
        ("SiLU", nn.SiLU),
        ("Swish", Swish),
        ("HSigmoid", HSigmoid),
        ("HSwish", nn.Hardswish),
        ("Clamp", Clamp),
        ("Clip", Clamp),
    ],
)
def test_registered_names_build_their_class(name: str, cls: type) -> None:
    assert type(build_activation_layer(dict(type=name))) is cls
    assert name in ACTIVATION_LAYERS


def test_values_of_the_custom_activations() -> None:
    torch.testing.assert_close(Swish()(X), X * torch.sigmoid(X))
    torch.testing.assert_close(Swish()(X), nn.SiLU()(X))
    # mmcv >= 1.4.4 defaults equal PyTorch's hardsigmoid
    torch.testing.assert_close(HSigmoid()(X), nn.functional.hardsigmoid(X))
    old = HSigmoid(bias=1.0, divisor=2.0)(X)  # mmcv < 1.4.4
    torch.testing.assert_close(old, ((X + 1) / 2).clamp(0, 1))
    torch.testing.assert_close(
        build_activation_layer(dict(type="HSwish"))(X), X * (X + 3).clamp(0, 6) / 6
    )
    clamp = build_activation_layer(dict(type="Clamp", min=-2.0, max=0.5))
    assert clamp(X).tolist() == [-2.0, -2.0, -1.0, 0.0, 0.5, 0.5, 0.5, 0.5]


def test_arguments_reach_the_layer() -> None:
    layer = build_activation_layer(dict(type="LeakyReLU", negative_slope=0.2, inplace=True))
    assert isinstance(layer, nn.LeakyReLU)
    assert layer.negative_slope == 0.2 and layer.inplace


def test_class_as_type() -> None:
    assert isinstance(build_activation_layer(dict(type=nn.ReLU)), nn.ReLU)


def test_accepts_inplace() -> None:
    assert accepts_inplace("ReLU") and accepts_inplace("LeakyReLU") and accepts_inplace("HSwish")
    assert not accepts_inplace("Sigmoid") and not accepts_inplace("Clamp")
    assert not accepts_inplace("Swish") and not accepts_inplace("HSigmoid")


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(UnknownTypeError, match="did you mean 'ReLU'"):
        build_activation_layer(dict(type="Relu"))


def test_bad_argument_names_the_config() -> None:
    with pytest.raises(ConfigTypeError, match="negative_slop"):
        build_activation_layer(dict(type="LeakyReLU", negative_slop=0.1))
    with pytest.raises(ConfigKeyError, match="'type'"):
        build_activation_layer({"inplace": True})
    with pytest.raises(ConfigTypeError):
        build_activation_layer("ReLU")  # type: ignore[arg-type]
