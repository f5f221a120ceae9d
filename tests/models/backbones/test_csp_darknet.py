"""CSPDarknet: arch P5/P6, deepen/widen factors, depthwise convs, Focus order, freezing.

Numerics against MMDetection: the yolox fixture (P5, ``test_one_stage_fixtures.py``) and the
``csp_darknet`` golden below (P6 with depthwise convs and YOLOXPAFPN, from MMDetection 3.3).
"""

from __future__ import annotations

import pytest
import torch

from detforge.models.backbones import CSPDarknet
from detforge.models.backbones.csp_darknet import Focus
from detforge.models.layers import CSPLayer, DepthwiseSeparableConvModule
from tests.models.component_golden import check_golden, check_layout


def test_golden_p6_depthwise_with_pafpn() -> None:
    check_golden("csp_darknet")


def test_full_size_yolox_nano_layout() -> None:
    check_layout("csp_darknet", "layout_yolox_nano.json")


def test_deepen_and_widen_factors() -> None:
    net = CSPDarknet(deepen_factor=0.33, widen_factor=0.25)
    assert net.stem.conv.conv.out_channels == 16
    assert [len(getattr(net, f"stage{i}")[-1].blocks) for i in range(1, 5)] == [1, 3, 3, 1]
    assert net.stage4[1].conv2.conv.out_channels == 256  # SPP before the last CSP layer
    assert not net.stage4[2].blocks[0].add_identity and net.stage1[1].blocks[0].add_identity


def test_p6_and_out_indices() -> None:
    net = CSPDarknet(arch="P6", deepen_factor=0.33, widen_factor=0.125, out_indices=(0, 5)).eval()
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 128, 128))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 64, 64), (1, 128, 2, 2)]


def test_use_depthwise_and_arch_overwrite() -> None:
    net = CSPDarknet(
        widen_factor=0.25,
        use_depthwise=True,
        arch_ovewrite=[[64, 128, 1, True, False], [128, 256, 1, False, True]],
        out_indices=(1, 2),
    )
    assert isinstance(net.stage1[0], DepthwiseSeparableConvModule)
    assert isinstance(net.stage1[1].blocks[0].conv2, DepthwiseSeparableConvModule)
    assert not hasattr(net, "stage3")


def test_focus_takes_v2_patch_order() -> None:
    focus = Focus(1, 4, kernel_size=1, norm_cfg=None, act_cfg=None)
    with torch.no_grad():
        focus.conv.conv.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        focus.conv.conv.bias.zero_()
    x = torch.arange(4.0).view(1, 1, 2, 2)  # [[tl, tr], [bl, br]] = [[0, 1], [2, 3]]
    assert focus(x).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]


def test_frozen_stages_and_norm_eval() -> None:
    net = CSPDarknet(deepen_factor=0.33, widen_factor=0.125, frozen_stages=1, norm_eval=True)
    net.train()
    assert not net.stem.training and not net.stage1.training and net.stage2.training
    assert not any(p.requires_grad for p in net.stage1.parameters())
    assert all(p.requires_grad for p in net.stage2.parameters())
    assert not net.stage2[0].bn.training
    with pytest.raises(ValueError, match="frozen_stages"):
        CSPDarknet(frozen_stages=5)
    with pytest.raises(ValueError, match="arch"):
        CSPDarknet(arch="P7")


def test_csp_layer_shapes_and_default_init() -> None:
    layer = CSPLayer(16, 8, num_blocks=2, add_identity=False)
    assert layer.main_conv.conv.out_channels == 4 and len(layer.blocks) == 2
    net = CSPDarknet(deepen_factor=0.33, widen_factor=0.125)
    torch.nn.init.zeros_(net.stage1[0].conv.weight)
    net.init_weights()  # kaiming-uniform a=sqrt(5): |w| <= 1 / sqrt(fan_in)
    weight = net.stage1[0].conv.weight
    bound = 1 / weight[0].numel() ** 0.5
    assert bool(weight.abs().max() <= bound) and bool(weight.abs().max() > 0)
