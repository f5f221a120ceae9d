"""RegNet: v2's stage plan for every named arch, full-size layout and golden outputs."""

from __future__ import annotations

import copy

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.backbones import RegNet
from detforge.models.backbones.regnet import regnet_stages
from detforge.registry import MODELS, build_module
from tests.models.component_goldens import assert_features, assert_layout, load_golden, load_layout

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_full_size_layout_matches_mmdetection() -> None:
    record = load_layout("regnet")
    assert_layout(build_module(copy.deepcopy(record["config"]), MODELS), record)


@pytest.mark.parametrize("arch", sorted(RegNet.arch_settings))
def test_stage_plan_of_every_named_arch_matches_mmdetection(arch: str) -> None:
    want = load_layout("regnet")["archs"][arch]
    stages = regnet_stages(RegNet.arch_settings[arch])
    assert list(stages.widths) == want["stage_widths"]
    assert list(stages.blocks) == want["stage_blocks"]
    assert list(stages.group_widths) == want["group_widths"]
    with torch.device("meta"):
        net = RegNet(arch=arch)
    conv2 = [getattr(net, f"layer{i + 1}")[0].conv2.out_channels for i in range(len(stages.widths))]
    assert conv2 == want["conv2_widths"]


@pytest.mark.parametrize("instance", ["x", "bot_mul_075"])
def test_golden_outputs_match_mmdetection(instance: str) -> None:
    weights, inputs, expected = load_golden("regnet")
    net = build_module(dict(expected[instance]["config"]), MODELS).eval()
    net.load_state_dict(weights[instance], strict=True)
    with torch.no_grad():
        assert_features(net(inputs[instance]), expected[instance]["backbone"])


def test_stem_frozen_stages_and_errors() -> None:
    net = RegNet(arch="regnetx_400mf", frozen_stages=1)
    assert tuple(net.conv1.weight.shape) == (32, 3, 3, 3)
    assert isinstance(net.maxpool, torch.nn.Identity)
    assert not net.conv1.weight.requires_grad and not net.layer1[0].conv1.weight.requires_grad
    assert net.layer2[0].conv1.weight.requires_grad
    assert net.feat_dim == 384 and net.depth == 22
    with pytest.raises(ConfigKeyError, match=r"unknown arch 'regnetx_3gf'.*regnetx_3\.2gf"):
        RegNet(arch="regnetx_3gf")
    with pytest.raises(ConfigKeyError, match=r"lacks \['group_w'\]"):
        RegNet(arch=dict(w0=8, wa=8.0, wm=1.5, depth=6, bot_mul=1.0))
    with pytest.raises(ValueError, match="w0 % 8 == 0"):
        regnet_stages(dict(w0=12, wa=8.0, wm=1.5, group_w=8, depth=6, bot_mul=1.0))
    with pytest.raises(ValueError, match="deep_stem"):
        RegNet(arch="regnetx_400mf", deep_stem=True)
