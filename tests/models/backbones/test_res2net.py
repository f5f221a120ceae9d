"""Res2Net: full-size layout and golden outputs of MMDetection, v2's forced options."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from detforge.models.backbones import Res2Net
from detforge.models.backbones.res2net import Bottle2neck
from detforge.registry import MODELS, build_module
from tests.models.component_goldens import assert_features, assert_layout, load_golden, load_layout

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_full_size_layout_matches_mmdetection() -> None:
    record = load_layout("res2net")
    assert_layout(build_module(copy.deepcopy(record["config"]), MODELS), record)


@pytest.mark.parametrize("instance", ["r2_50", "r2_50_s3_caffe_ignored"])
def test_golden_outputs_match_mmdetection(instance: str) -> None:
    weights, inputs, expected = load_golden("res2net")
    cfg = dict(expected[instance]["config"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = build_module(cfg, MODELS)
    ignored = sorted(
        str(w.message).split("=")[0] for w in caught if str(w.message).startswith("Res2Net:")
    )
    assert ignored == sorted(f"Res2Net: {k}" for k in ("style", "avg_down") if k in cfg)
    net.eval().load_state_dict(weights[instance], strict=True)
    with torch.no_grad():
        assert_features(net(inputs[instance]), expected[instance]["backbone"])


def test_stage_blocks_and_shortcuts() -> None:
    net = Res2Net(depth=50, base_channels=8, stem_channels=16, scales=4, base_width=4)
    assert net.deep_stem and net.avg_down and net.style == "pytorch"
    first, second = net.layer2[0], net.layer2[1]
    assert first.stage_type == "stage" and second.stage_type == "normal"
    assert isinstance(first.pool, torch.nn.AvgPool2d) and not hasattr(second, "pool")
    assert not hasattr(net.layer1[0], "pool")  # a stride-1 'stage' block does not pool
    # every shortcut starts with an AvgPool (1x1 in layer1): downsample.1 is the conv
    assert isinstance(net.layer1[0].downsample[0], torch.nn.AvgPool2d)
    assert tuple(net.layer1[0].downsample[1].weight.shape) == (32, 16, 1, 1)
    assert (first.width, len(first.convs)) == (8, 3)


def test_bottle2neck_rejects_one_scale_and_bad_stage_type() -> None:
    with pytest.raises(ValueError, match="scales must be > 1"):
        Bottle2neck(8, 2, scales=1)
    with pytest.raises(ValueError, match="stage_type must be 'normal' or 'stage'"):
        Bottle2neck(8, 2, stage_type="first")


def test_default_init_zeroes_the_last_norm_of_each_block() -> None:
    net = Res2Net(depth=50, base_channels=8, stem_channels=16, base_width=4)
    net.init_weights()
    assert torch.all(net.layer3[2].bn3.weight == 0) and torch.all(net.layer3[2].bns[0].weight == 1)
