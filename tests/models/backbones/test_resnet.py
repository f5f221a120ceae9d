"""ResNet / ResNetV1d: shapes, key layout, freezing, norm_eval, init, DCN, checkpointing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.errors import ConfigKeyError
from detforge.models.backbones import ResNet, ResNetV1d
from detforge.models.layers import DeformConv2dPack
from detforge.registry import MODELS, build_module


def _small(**kwargs: object) -> ResNet:
    return ResNet(**{"depth": 18, "base_channels": 8, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("depth", "base", "channels"),
    [(18, 16, [16, 32, 64, 128]), (50, 8, [32, 64, 128, 256])],
)
def test_out_indices_shapes_and_strides(depth: int, base: int, channels: list[int]) -> None:
    net = ResNet(depth=depth, base_channels=base).eval()
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [
        (1, c, 64 // s, 64 // s) for c, s in zip(channels, [4, 8, 16, 32], strict=True)
    ]
    picked = ResNet(depth=depth, base_channels=base, out_indices=(1, 3)).eval()
    picked.load_state_dict(net.state_dict())
    with torch.no_grad():
        two = picked(torch.ones(1, 3, 64, 64))
        full = net(torch.ones(1, 3, 64, 64))
    assert len(two) == 2
    torch.testing.assert_close(two[0], full[1])
    torch.testing.assert_close(two[1], full[3])
    assert net.feat_dim == channels[-1]


def test_num_stages_and_dilation() -> None:
    net = _small(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 2), out_indices=(2,)).eval()
    assert not hasattr(net, "layer4")
    assert net.layer3[0].conv1.stride == (2, 2)
    dilated = _small(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)).eval()
    assert dilated.layer4[0].conv1.dilation == (2, 2) and dilated.layer4[0].conv1.padding == (2, 2)
    with torch.no_grad():
        assert dilated(torch.randn(1, 3, 64, 64))[3].shape == (1, 64, 4, 4)


def test_key_layout_depth50() -> None:
    keys = list(ResNet(depth=50, base_channels=8).state_dict())
    assert keys[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert keys[6] == "layer1.0.conv1.weight"
    assert "layer1.0.conv3.weight" in keys and "layer1.0.bn3.weight" in keys
    assert "layer1.0.downsample.0.weight" in keys and "layer1.0.downsample.1.running_var" in keys
    assert "layer1.1.downsample.0.weight" not in keys
    assert keys[-1] == "layer4.2.bn3.num_batches_tracked"


def test_style_puts_the_stride_on_conv1_or_conv2() -> None:
    pt = ResNet(depth=50, base_channels=8, style="pytorch")
    cf = ResNet(depth=50, base_channels=8, style="caffe")
    assert pt.layer2[0].conv1.stride == (1, 1) and pt.layer2[0].conv2.stride == (2, 2)
    assert cf.layer2[0].conv1.stride == (2, 2) and cf.layer2[0].conv2.stride == (1, 1)
    with torch.no_grad():
        assert cf.eval()(torch.randn(1, 3, 64, 64))[1].shape == (1, 64, 8, 8)


def test_deep_stem_and_avg_down_layout() -> None:
    net = ResNet(depth=50, base_channels=8, stem_channels=16, deep_stem=True, avg_down=True)
    keys = net.state_dict()
    assert tuple(keys["stem.0.weight"].shape) == (8, 3, 3, 3)
    assert tuple(keys["stem.3.weight"].shape) == (8, 8, 3, 3)
    assert tuple(keys["stem.6.weight"].shape) == (16, 8, 3, 3)
    assert "stem.7.running_mean" in keys and "conv1.weight" not in keys
    # as in v2, every avg_down shortcut starts with an AvgPool, a 1x1 one in the stride-1 stage
    assert "layer1.0.downsample.1.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    assert isinstance(net.layer1[0].downsample[0], nn.AvgPool2d)
    assert tuple(keys["layer2.0.downsample.1.weight"].shape) == (64, 32, 1, 1)
    assert "layer2.0.downsample.2.weight" in keys and "layer2.0.downsample.0.weight" not in keys
    assert isinstance(net.layer2[0].downsample[0], nn.AvgPool2d)
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 64, 64))[3].shape == (1, 256, 2, 2)


def test_resnetv1d_is_deep_stem_avg_down() -> None:
    v1d = ResNetV1d(depth=50, base_channels=8)
    assert v1d.deep_stem and v1d.avg_down
    ref = ResNet(depth=50, base_channels=8, deep_stem=True, avg_down=True)
    mine = {k: tuple(v.shape) for k, v in v1d.state_dict().items()}
    assert mine == {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert tuple(v1d.state_dict()["stem.6.weight"].shape) == (8, 4, 3, 3)
    with pytest.raises(TypeError):
        ResNetV1d(depth=50, deep_stem=False)  # type: ignore[call-arg]
    assert isinstance(build_module(dict(type="ResNetV1d", depth=18), MODELS), ResNetV1d)


def _frozen_names(net: nn.Module) -> set[str]:
    return {name for name, p in net.named_parameters() if not p.requires_grad}


def test_frozen_stages_freeze_exactly_v2_parameters() -> None:
    net = _small(frozen_stages=1, norm_eval=False)
    expected = {
        n for n, _ in net.named_parameters() if n.split(".")[0] in ("conv1", "bn1", "layer1")
    }
    assert _frozen_names(net) == expected and expected
    net.train()
    assert not net.bn1.training and not net.conv1.training
    assert all(not m.training for m in net.layer1.modules())
    assert all(m.training for m in net.layer2.modules())
    assert _frozen_names(_small(frozen_stages=-1)) == set()
    stem_only = _small(frozen_stages=0)
    assert _frozen_names(stem_only) == {"conv1.weight", "bn1.weight", "bn1.bias"}
    deep = _small(frozen_stages=0, deep_stem=True)
    assert _frozen_names(deep) == {n for n, _ in deep.named_parameters() if n.startswith("stem.")}
    assert not deep.train().stem.training
    with pytest.raises(ValueError, match="frozen_stages"):
        _small(frozen_stages=5)


def test_frozen_stage_keeps_running_stats() -> None:
    net = _small(frozen_stages=1, norm_eval=False).train()
    before = net.layer1[0].bn1.running_mean.clone()
    live_before = net.layer2[0].bn1.running_mean.clone()
    net(torch.randn(2, 3, 32, 32) + 3)
    torch.testing.assert_close(net.layer1[0].bn1.running_mean, before)
    assert not torch.equal(net.layer2[0].bn1.running_mean, live_before)


def test_norm_eval_keeps_batchnorm_in_eval() -> None:
    net = _small(norm_eval=True).train()
    bns = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert net.training and net.layer2[0].conv1.training
    before = [m.running_mean.clone() for m in bns]
    net(torch.randn(2, 3, 32, 32) + 3)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns, strict=True))
    assert all(m.training for m in _small(norm_eval=False).train().modules())
    assert all(not m.training for m in _small(norm_eval=True).train().eval().modules())


def test_default_init_and_zero_init_residual() -> None:
    torch.manual_seed(0)
    net = ResNet(depth=50, base_channels=16)
    net.init_weights()
    conv = net.layer3[0].conv2  # 64 -> 64, 3x3: fan_out = 576
    assert abs(conv.weight.std().item() / math.sqrt(2 / 576) - 1) < 0.05
    assert torch.all(net.bn1.weight == 1) and torch.all(net.bn1.bias == 0)
    assert torch.all(net.layer1[0].bn2.weight == 1)
    assert all(torch.all(b.bn3.weight == 0) for layer in (net.layer1, net.layer4) for b in layer)
    assert torch.all(net.layer1[0].downsample[1].weight == 1)
    basic = _small()
    basic.init_weights()
    assert torch.all(basic.layer2[1].bn2.weight == 0) and torch.all(basic.layer2[1].bn1.weight == 1)
    no_zero = ResNet(depth=50, base_channels=8, zero_init_residual=False)
    no_zero.init_weights()
    assert torch.all(no_zero.layer1[0].bn3.weight == 1)


def test_init_cfg_and_pretrained() -> None:
    custom = _small(init_cfg=dict(type="Constant", val=0.5, layer="Conv2d"))
    custom.init_weights()
    assert torch.all(custom.conv1.weight == 0.5) and torch.all(custom.layer1[0].bn2.weight == 1)
    with pytest.warns(DeprecationWarning, match="pretrained is deprecated"):
        old = _small(pretrained="torchvision://resnet18")
    assert old.init_cfg == {"type": "Pretrained", "checkpoint": "torchvision://resnet18"}
    with pytest.raises(ConfigKeyError, match="cannot both"):
        _small(pretrained="a.pth", init_cfg=dict(type="Pretrained", checkpoint="a.pth"))


def test_argument_errors() -> None:
    with pytest.raises(ConfigKeyError, match="invalid depth 20"):
        ResNet(depth=20)
    with pytest.raises(ValueError, match="out_indices"):
        _small(out_indices=(4,))
    with pytest.raises(ValueError, match="strides"):
        _small(num_stages=3)
    with pytest.raises(ValueError, match="style"):
        _small(style="tf")
    with pytest.raises(NotImplementedError, match="plugins"):
        _small(plugins=[dict(cfg=dict(type="ContextBlock"), position="after_conv3")])
    with pytest.raises(NotImplementedError, match="dcn"):
        _small(dcn=dict(type="DCN"), stage_with_dcn=(False, True, True, True))


def test_dcn_stages_key_layout_and_zero_offset_equivalence() -> None:
    torch.manual_seed(0)
    dcn_cfg = dict(type="DCN", deform_groups=1, fallback_on_stride=False)
    dcn = ResNet(depth=50, base_channels=8, dcn=dcn_cfg, stage_with_dcn=(False, True, True, True))
    assert dcn_cfg == dict(type="DCN", deform_groups=1, fallback_on_stride=False)  # not mutated
    assert not isinstance(dcn.layer1[0].conv2, DeformConv2dPack)
    assert all(isinstance(b.conv2, DeformConv2dPack) for b in dcn.layer3)
    keys = dcn.state_dict()
    assert tuple(keys["layer2.0.conv2.conv_offset.weight"].shape) == (18, 16, 3, 3)
    assert "layer2.0.conv2.weight" in keys and "layer2.0.conv2.bias" not in keys
    dcn.init_weights()
    assert torch.all(dcn.layer2[0].conv2.conv_offset.weight == 0)
    plain = ResNet(depth=50, base_channels=8)
    plain.load_state_dict({k: v for k, v in keys.items() if "conv_offset" not in k})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(dcn.eval()(x), plain.eval()(x), strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    fallback = ResNet(
        depth=50,
        base_channels=8,
        dcn=dict(type="DCN", fallback_on_stride=True),
        stage_with_dcn=(False, True, True, True),
    )
    assert not any(isinstance(m, DeformConv2dPack) for m in fallback.modules())


def test_gn_norm_cfg_names_layers_gn() -> None:
    net = _small(norm_cfg=dict(type="GN", num_groups=4, requires_grad=True))
    keys = net.state_dict()
    assert "gn1.weight" in keys and "layer1.0.gn2.bias" in keys and "bn1.weight" not in keys
    frozen_norm = _small(norm_cfg=dict(type="BN", requires_grad=False))
    assert _frozen_names(frozen_norm) == {
        n for n, _ in frozen_norm.named_parameters() if "bn" in n or "downsample.1" in n
    }


def test_with_cp_gives_the_same_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    ref = _small(norm_eval=True)
    cp = _small(norm_eval=True, with_cp=True)
    cp.load_state_dict(ref.state_dict())
    x1 = torch.randn(2, 3, 32, 32, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    sum(o.sum() for o in ref.train()(x1)).backward()
    sum(o.sum() for o in cp.train()(x2)).backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ref.layer3[0].conv1.weight.grad, cp.layer3[0].conv1.weight.grad)
