"""ResNeXt: grouped-conv widths, key layout (as MMDetection's), forward shapes."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.backbones import ResNet, ResNeXt
from detforge.registry import MODELS, build_module


def test_resnext50_32x4d_shapes() -> None:
    """Shapes of MMDetection's ``ResNeXt(depth=50, groups=32, base_width=4)`` (32x4d)."""
    net = build_module(dict(type="ResNeXt", depth=50, groups=32, base_width=4), MODELS)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["conv1.weight"] == (64, 3, 7, 7)
    assert shapes["layer1.0.conv1.weight"] == (128, 64, 1, 1)
    assert shapes["layer1.0.bn1.weight"] == (128,)
    assert shapes["layer1.0.conv2.weight"] == (128, 4, 3, 3)
    assert shapes["layer1.0.conv3.weight"] == (256, 128, 1, 1)
    assert shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert shapes["layer4.0.conv2.weight"] == (1024, 32, 3, 3)
    assert shapes["layer4.2.bn3.weight"] == (2048,)
    # same keys, in the same order, as a ResNet-50
    assert list(shapes) == list(ResNet(depth=50).state_dict())
    assert net.layer2[0].conv2.groups == 32


def test_groups_one_is_resnet() -> None:
    a = ResNeXt(depth=50, groups=1, base_channels=8)
    b = ResNet(depth=50, base_channels=8)
    assert {k: v.shape for k, v in a.state_dict().items()} == {
        k: v.shape for k, v in b.state_dict().items()
    }


def test_forward_shapes_and_width_formula() -> None:
    net = ResNeXt(depth=50, groups=4, base_width=8, base_channels=16).eval()
    # width = floor(planes * base_width / base_channels) * groups = planes * 2
    assert net.layer1[0].conv2.weight.shape == (32, 8, 3, 3)
    assert net.layer3[0].conv2.weight.shape == (128, 32, 3, 3)
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [
        (1, 64, 16, 16),
        (1, 128, 8, 8),
        (1, 256, 4, 4),
        (1, 512, 2, 2),
    ]


def test_resnext_options_reach_resnet() -> None:
    net = ResNeXt(
        depth=50, groups=2, base_channels=8, frozen_stages=1, deep_stem=True, avg_down=True
    )
    assert not net.layer1[0].conv1.weight.requires_grad
    assert (
        "stem.0.weight" in net.state_dict() and "layer2.0.downsample.2.weight" in net.state_dict()
    )
    net.init_weights()
    assert torch.all(net.layer2[0].bn3.weight == 0)


def test_resnext_depths() -> None:
    with pytest.raises(ConfigKeyError, match="invalid depth 18"):
        ResNeXt(depth=18)
