"""EfficientNet: scaled block tables of every arch, full-size layout and golden outputs."""

from __future__ import annotations

import copy
from types import MappingProxyType

import pytest
import torch

from detforge.models.backbones import EfficientNet
from detforge.models.backbones.efficientnet import EdgeResidual, scale_layers
from detforge.models.layers import InvertedResidual
from detforge.registry import MODELS, build_module
from tests.models.component_goldens import assert_features, assert_layout, load_golden, load_layout

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_full_size_layout_matches_mmdetection() -> None:
    record = load_layout("efficientnet")
    assert_layout(build_module(copy.deepcopy(record["config"]), MODELS), record)


@pytest.mark.parametrize("arch", sorted(EfficientNet.arch_settings))
def test_scaled_tables_of_every_arch_match_mmdetection(arch: str) -> None:
    want = load_layout("efficientnet")["scaled_tables"][arch]
    width, depth, _ = EfficientNet.arch_settings[arch]
    assert scale_layers(EfficientNet.layer_settings[arch[:1]], width, depth) == want


@pytest.mark.parametrize("instance", ["b3_tiny", "em_tiny"])
def test_golden_outputs_match_mmdetection(instance: str) -> None:
    weights, inputs, expected = load_golden("efficientnet")

    class TinyEfficientNet(EfficientNet):
        layer_settings = MappingProxyType(expected[instance]["tables"])

    net = TinyEfficientNet(**expected[instance]["config"]).eval()
    net.load_state_dict(weights[instance], strict=True)
    with torch.no_grad():
        assert_features(net(inputs[instance]), expected[instance]["backbone"])


def test_blocks_head_conv_and_freezing() -> None:
    net = EfficientNet(arch="b0", out_indices=(2, 3), frozen_stages=2)
    assert len(net.layers) == 4  # layers after the last output are not built
    assert isinstance(net.layers[1][0], InvertedResidual) and not net.layers[1][0].with_expand_conv
    assert net.layers[2][1].with_res_shortcut and not net.layers[2][0].with_res_shortcut
    assert not net.layers[1][0].depthwise_conv.conv.weight.requires_grad
    assert net.layers[2][0].expand_conv.conv.weight.requires_grad
    net.train()
    assert not net.layers[0].bn.training and net.layers[2][0].expand_conv.bn.training
    es = EfficientNet(arch="es", out_indices=(6,))
    assert len(es.layers) == 7 and es.layers[6].conv.out_channels == 1280
    assert isinstance(es.layers[1][0], EdgeResidual)
    with pytest.raises(ValueError, match="out_indices"):
        EfficientNet(out_indices=(7,))
    with pytest.raises(KeyError, match="unknown arch 'b9'"):
        EfficientNet(arch="b9")
