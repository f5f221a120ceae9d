"""DetectoRS_ResNet / DetectoRS_ResNeXt (SAC, RFP inputs, output_img) and the RFP neck:
structure, rfp_forward, v2's init, and the v2 ``detectors`` configs' backbone/neck parts."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from detforge.errors import ConfigTypeError
from detforge.models.backbones import DetectoRS_ResNet, DetectoRS_ResNeXt
from detforge.models.layers import ConvAWS2d, SAConv2d
from detforge.models.necks import FPN, RFP

_SMALL: dict[str, Any] = dict(
    depth=50,
    base_channels=8,
    conv_cfg=dict(type="ConvAWS"),
    sac=dict(type="SAC", use_deform=True),
    stage_with_sac=(False, True, True, True),
)


def test_sac_rfp_conv_and_output_img() -> None:
    net = DetectoRS_ResNet(**_SMALL, rfp_inplanes=12, output_img=True)
    assert type(net.layer1[0].conv2) is ConvAWS2d and type(net.layer1[0].conv1) is ConvAWS2d
    assert all(isinstance(b.conv2, SAConv2d) for i in (2, 3, 4) for b in getattr(net, f"layer{i}"))
    assert net.layer2[1].conv2.use_deform
    assert not hasattr(net.layer1[0], "rfp_conv")  # stage 1 gets no RFP input (v2)
    for i in (2, 3, 4):
        blocks = getattr(net, f"layer{i}")
        assert blocks[0].rfp_conv.in_channels == 12 and not hasattr(blocks[1], "rfp_conv")
    img = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        outs = net.eval()(img)
    assert outs[0] is img and [o.shape[1] for o in outs[1:]] == [32, 64, 128, 256]


def test_rfp_forward_adds_the_rfp_features_before_the_relu() -> None:
    torch.manual_seed(0)
    net = DetectoRS_ResNet(
        **dict(_SMALL, stage_with_sac=(False, True, True, False)), rfp_inplanes=4
    ).eval()
    img = torch.rand(1, 3, 64, 64)
    rfp = [torch.rand(1, 4, 16 // 2**i, 16 // 2**i) for i in range(4)]
    for i in (2, 3, 4):
        nn.init.zeros_(getattr(net, f"layer{i}")[0].rfp_conv.weight)
        nn.init.zeros_(getattr(net, f"layer{i}")[0].rfp_conv.bias)
    with torch.no_grad():
        plain = net(img)
        torch.testing.assert_close(net.rfp_forward(img, rfp), plain)
        net.layer2[0].rfp_conv.bias.fill_(1.0)
        shifted = net.rfp_forward(img, rfp)
    assert torch.equal(shifted[0], plain[0]) and not torch.allclose(shifted[1], plain[1])


def test_v2_init_without_pretrained() -> None:
    net = DetectoRS_ResNet(**_SMALL)
    switch = net.layer2[0].conv2.switch
    assert switch.weight.abs().sum() == 0 and torch.all(switch.bias == 1)  # SAC's own init
    net.init_weights()
    # v2 Kaiming-initialises every Conv2d, SAC's switch included, and zeroes the last norms
    assert switch.weight.abs().sum() > 0 and torch.all(switch.bias == 0)
    assert torch.all(net.layer3[1].bn3.weight == 0) and torch.all(net.layer3[1].bn2.weight == 1)
    assert torch.all(net.layer2[0].conv2.weight_diff == 0)


def test_pretrained_and_init_cfg(tmp_path: Any) -> None:
    src = DetectoRS_ResNet(depth=50, base_channels=8)
    path = tmp_path / "plain.pth"
    torch.save(
        {"state_dict": {k: v for k, v in src.state_dict().items() if "layer4" not in k}}, path
    )
    net = DetectoRS_ResNet(
        depth=50,
        base_channels=8,
        conv_cfg=dict(type="ConvAWS"),
        init_cfg=dict(type="Pretrained", checkpoint=str(path)),
    )
    assert net.pretrained == str(path)
    net.init_weights()
    torch.testing.assert_close(net.layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    # AWS buffers come from the loaded filters: the conv computes the plain one
    x = torch.rand(1, 8, 5, 5)
    torch.testing.assert_close(net.layer1[0].conv1(x), src.layer1[0].conv1(x), atol=1e-5, rtol=0)
    with pytest.raises(ConfigTypeError, match="Pretrained"):
        DetectoRS_ResNet(depth=50, init_cfg=dict(type="Kaiming"))
    with pytest.raises(ValueError, match="stage_with_sac"):
        DetectoRS_ResNet(depth=50, sac=dict(type="SAC"), stage_with_sac=(True,))


def test_resnext_variant_groups_the_sac_conv() -> None:
    net = DetectoRS_ResNeXt(
        depth=50,
        groups=4,
        base_width=4,
        base_channels=16,
        sac=dict(type="SAC"),
        stage_with_sac=(True, True, False, False),
    )
    conv2 = net.layer1[0].conv2
    assert isinstance(conv2, SAConv2d) and conv2.groups == 4 and conv2.in_channels == 16
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 3, 96, 96))[3].shape == (1, 512, 3, 3)


def test_rfp_neck_steps_and_init() -> None:
    torch.manual_seed(0)
    # batch statistics keep the random-weight activations finite through both passes
    tiny = dict(
        _SMALL, sac=dict(type="SAC"), stage_with_sac=(False, True, False, False), norm_eval=False
    )
    kwargs: dict[str, Any] = dict(
        in_channels=[32, 64, 128, 256],
        out_channels=8,
        num_outs=5,
        aspp_out_channels=2,
        rfp_backbone=dict(type="DetectoRS_ResNet", **tiny, rfp_inplanes=8),
    )
    backbone = DetectoRS_ResNet(**tiny, output_img=True).train()
    neck = RFP(rfp_steps=2, **kwargs).train()
    assert len(neck.rfp_modules) == 1 and neck.rfp_aspp.aspp[1].dilation == (3, 3)
    keys = neck.state_dict()
    assert "rfp_modules.0.layer2.0.rfp_conv.weight" in keys and "rfp_weight.bias" in keys
    neck.init_weights()  # rfp_weight 0: each level becomes the mean of both steps
    assert torch.all(neck.rfp_weight.weight == 0)
    one_step = RFP(rfp_steps=1, **kwargs).train()
    one_step.load_state_dict({k: v for k, v in neck.state_dict().items() if "rfp_modules" not in k})
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 64, 64))
        outs = neck(feats)
        fpn_only = one_step(feats)
        rfp_feats = [fpn_only[0], *(neck.rfp_aspp(f) for f in fpn_only[1:])]
        second = FPN.forward(neck, neck.rfp_modules[0].rfp_forward(feats[0], rfp_feats))
    sizes = [16, 8, 4, 2, 1]
    assert [tuple(o.shape) for o in outs] == [(1, 8, s, s) for s in sizes]
    assert not torch.allclose(outs[0], fpn_only[0])
    for got, a, b in zip(outs, fpn_only, second, strict=True):
        torch.testing.assert_close(got, (a + b) / 2)
    with pytest.raises(ValueError, match="init_cfg"):
        RFP(rfp_steps=2, init_cfg=dict(type="Xavier"), **kwargs)
    with pytest.raises(ValueError, match="output_img"):
        neck(feats[1:])
