"""ResNeSt: full-size layout and golden outputs of MMDetection, split-attention details."""

from __future__ import annotations

import copy

import pytest
import torch

from detforge.models.backbones import ResNeSt
from detforge.models.backbones.resnest import SplitAttentionConv2d
from detforge.registry import MODELS, build_module
from tests.models.component_goldens import assert_features, assert_layout, load_golden, load_layout

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_full_size_layout_matches_mmdetection() -> None:
    record = load_layout("resnest")
    assert_layout(build_module(copy.deepcopy(record["config"]), MODELS), record)


@pytest.mark.parametrize("instance", ["radix2_groups2", "radix1_no_avd"])
def test_golden_outputs_match_mmdetection(instance: str) -> None:
    weights, inputs, expected = load_golden("resnest")
    net = build_module(dict(expected[instance]["config"]), MODELS).eval()
    net.load_state_dict(weights[instance], strict=True)
    with torch.no_grad():
        assert_features(net(inputs[instance]), expected[instance]["backbone"])


def test_avg_down_stride_and_attention_width() -> None:
    net = ResNeSt(depth=50, stem_channels=16, base_channels=8)
    block = net.layer2[0]
    assert block.avg_down_stride and block.conv2.conv.stride == (1, 1)
    assert not net.layer2[1].avg_down_stride and not hasattr(net.layer2[1], "avd_layer")
    # hidden width max(in * radix // reduction_factor, 32), fc convs grouped by cardinality
    m = SplitAttentionConv2d(64, 64, 3, padding=1, groups=2, radix=2, reduction_factor=2)
    assert tuple(m.fc1.weight.shape) == (64, 32, 1, 1)
    assert tuple(m.fc2.weight.shape) == (128, 32, 1, 1)
    assert SplitAttentionConv2d(8, 8, 3, radix=2).fc1.out_channels == 32
    with pytest.raises(TypeError, match="unexpected keyword argument 'deep_stem'"):
        ResNeSt(depth=50, deep_stem=False)  # ResNetV1d always has the deep stem


def test_default_init_zeroes_the_last_norm_of_each_block() -> None:
    net = ResNeSt(depth=50, stem_channels=16, base_channels=8)
    net.init_weights()
    assert torch.all(net.layer2[1].bn3.weight == 0)
    assert torch.all(net.layer2[1].conv2.bn0.weight == 1) and torch.all(
        net.layer2[1].conv2.fc1.bias == 0
    )
