"""HourglassNet: the MMDetection golden, the full-size Hourglass-104 layout, v2's quirks."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.backbones import HourglassNet
from detforge.models.backbones.hourglass import HourglassModule
from tests.models.component_golden import check_golden, check_layout


def test_golden_two_stacks() -> None:
    check_golden("hourglass")


def test_full_size_hourglass104_layout() -> None:
    check_layout("hourglass", "layout_cornernet_hourglass104.json")


def test_nested_modules_use_the_default_norm_as_in_v2() -> None:
    net = HourglassNet(
        downsample_times=2,
        num_stacks=1,
        stage_channels=(8, 8, 16),
        stage_blocks=(1, 1, 1),
        feat_channel=8,
        norm_cfg=dict(type="GN", num_groups=2),
    )
    hourglass = net.hourglass_modules[0]
    assert isinstance(hourglass.low2, HourglassModule)
    assert isinstance(net.stem[0].gn, torch.nn.GroupNorm)
    assert isinstance(hourglass.up1[0].bn1, torch.nn.BatchNorm2d)
    # one stack still builds one (unused) inter block, as v2's ResLayer does
    assert len(net.inters) == 1 and len(net.conv1x1s) == 0


def test_init_weights_resets_convs() -> None:
    net = HourglassNet(downsample_times=1, num_stacks=1, stage_channels=(8, 8), stage_blocks=(1, 1))
    torch.nn.init.constant_(net.stem[0].conv.weight, 5.0)
    net.init_weights()
    fan_in = net.stem[0].conv.weight[0].numel()
    assert bool(net.stem[0].conv.weight.abs().max() <= 1 / fan_in**0.5)


def test_arguments_are_checked() -> None:
    with pytest.raises(ConfigKeyError, match="init_cfg"):
        HourglassNet(init_cfg=dict(type="Kaiming", layer="Conv2d"))
    with pytest.raises(ValueError, match="same length"):
        HourglassNet(stage_channels=(8, 8), stage_blocks=(1,))
    with pytest.raises(ValueError, match="downsample_times"):
        HourglassNet(downsample_times=2, stage_channels=(8, 8), stage_blocks=(1, 1))
    with pytest.warns(UserWarning, match="ignored"):
        HourglassNet(
            downsample_times=1, stage_channels=(8, 8), stage_blocks=(1, 1), pretrained="x.pth"
        )
