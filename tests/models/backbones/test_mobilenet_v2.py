"""MobileNetV2: v2's channel rounding, output strides, freezing rules, init and errors.

Its numerics against MMDetection are checked by ``tests/models/necks/test_one_stage_fixtures.py``
(the ssd and yolov3 fixtures run MobileNetV2 at ``widen_factor=0.25``).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.backbones import MobileNetV2
from detforge.models.layers import InvertedResidual, make_divisible
from detforge.registry import MODELS, build_module


def test_full_width_channels_and_strides() -> None:
    net = MobileNetV2(out_indices=tuple(range(8))).eval()
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [16, 24, 32, 64, 96, 160, 320, 1280]
    assert [64 // o.shape[-1] for o in outs] == [2, 4, 8, 16, 16, 32, 32, 32]
    # first block of layer1 has no expansion conv (expand ratio 1); the others do
    assert not net.layer1[0].with_expand_conv and net.layer2[0].with_expand_conv
    assert net.layer2[0].expand_conv.conv.out_channels == 16 * 6
    assert net.layer2[1].with_res_shortcut and not net.layer2[0].with_res_shortcut


def test_widen_factor_rounding_and_last_conv() -> None:
    assert make_divisible(16 * 0.35, 8) == 8
    assert make_divisible(96 * 0.35, 8) == 32  # 33.6 -> 32 (>= 90 %)
    assert make_divisible(9, 8) == 16  # rounding to 8 would lose more than 10 %
    small = MobileNetV2(widen_factor=0.35)
    assert small.conv1.conv.out_channels == 16 and small.conv2.conv.out_channels == 1280
    wide = MobileNetV2(widen_factor=1.5)
    assert wide.conv2.conv.out_channels == 1920


def test_frozen_stages_follow_v2() -> None:
    net = MobileNetV2(widen_factor=0.25, frozen_stages=2)
    net.train()
    assert not any(p.requires_grad for p in net.conv1.parameters())
    assert net.conv1.training  # v2 freezes the stem's parameters but not its BN statistics
    assert not net.layer2.training and not any(p.requires_grad for p in net.layer2.parameters())
    assert net.layer3.training and all(p.requires_grad for p in net.layer3.parameters())


def test_norm_eval_keeps_bn_in_eval_mode() -> None:
    net = MobileNetV2(widen_factor=0.25, norm_eval=True).train()
    assert not net.layer4[0].depthwise_conv.bn.training
    assert net.layer4[0].training


def test_with_cp_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    block = InvertedResidual(8, 8, mid_channels=16)
    cp = InvertedResidual(8, 8, mid_channels=16, with_cp=True)
    cp.load_state_dict(block.state_dict())
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    block(x).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    cp(x).sum().backward()
    torch.testing.assert_close(x.grad, grad)


def test_init_cfg_and_pretrained() -> None:
    net = MobileNetV2(widen_factor=0.25)
    torch.nn.init.zeros_(net.layer3[0].depthwise_conv.bn.weight)
    net.init_weights()  # default: Kaiming convs, norm weights 1
    assert bool((net.layer3[0].depthwise_conv.bn.weight == 1).all())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = MobileNetV2(pretrained="open-mmlab://mmdet/mobilenet_v2")
    assert net.init_cfg == {"type": "Pretrained", "checkpoint": "open-mmlab://mmdet/mobilenet_v2"}
    assert any("deprecated" in str(w.message) for w in caught)
    with pytest.raises(ConfigKeyError, match="cannot both be set"):
        MobileNetV2(pretrained="x.pth", init_cfg=dict(type="Pretrained", checkpoint="y.pth"))


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="out_indices"):
        MobileNetV2(out_indices=(8,))
    with pytest.raises(ValueError, match="frozen_stages"):
        MobileNetV2(frozen_stages=8)
    with pytest.raises(Exception, match="widen_factr"):
        build_module(dict(type="MobileNetV2", widen_factr=0.5), MODELS)
