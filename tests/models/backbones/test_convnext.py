"""ConvNeXt (mmcls 0.25 layout, registered as ``mmcls.ConvNeXt``); golden: test_convnext_golden."""

from __future__ import annotations

import pytest
import torch

from detforge.models.backbones.convnext import ConvNeXt, LayerNorm2d
from detforge.registry import MODELS

_ARCH = dict(depths=[1, 2], channels=[8, 16])


def test_registered_under_the_mmcls_name() -> None:
    net = MODELS.build(dict(type="mmcls.ConvNeXt", arch=_ARCH, out_indices=[0, 1]))
    assert isinstance(net, ConvNeXt)
    keys = list(net.state_dict())
    for key in (
        "downsample_layers.0.0.weight",
        "downsample_layers.0.1.weight",
        "downsample_layers.1.0.weight",
        "downsample_layers.1.1.weight",
        "stages.1.1.depthwise_conv.weight",
        "stages.1.1.pointwise_conv2.weight",
        "stages.1.1.gamma",
        "norm0.weight",
        "norm1.weight",
    ):
        assert key in keys


def test_layer_norm_2d_normalises_channels() -> None:
    x = torch.rand(2, 4, 3, 5)
    norm = LayerNorm2d(4, eps=1e-6)
    torch.nn.init.normal_(norm.weight)
    expected = torch.nn.functional.layer_norm(
        x.permute(0, 2, 3, 1), (4,), norm.weight, norm.bias, 1e-6
    )
    assert torch.allclose(norm(x), expected.permute(0, 3, 1, 2), atol=1e-6)


def test_outputs_gap_and_negative_indices() -> None:
    maps = ConvNeXt(arch=_ARCH, out_indices=(0, -1), gap_before_final_norm=False).eval()
    assert maps.out_indices == [0, 1]
    assert [tuple(o.shape) for o in maps(torch.rand(1, 3, 32, 40))] == [
        (1, 8, 8, 10),
        (1, 16, 4, 5),
    ]
    pooled = ConvNeXt(arch=_ARCH).eval()
    assert [tuple(o.shape) for o in pooled(torch.rand(2, 3, 32, 32))] == [(2, 16)]
    with pytest.raises(KeyError, match="out_indices"):
        ConvNeXt(arch=_ARCH, out_indices=[2])
    with pytest.raises(KeyError, match="tiny"):
        ConvNeXt(arch="tinny")


def test_linear_and_conv_pointwise_layers_agree() -> None:
    torch.manual_seed(0)
    linear = ConvNeXt(arch=_ARCH, out_indices=[1], gap_before_final_norm=False).eval()
    conv = ConvNeXt(arch=_ARCH, out_indices=[1], gap_before_final_norm=False, linear_pw_conv=False)
    state = {
        k: v[..., None, None] if "pointwise" in k and v.dim() == 2 else v
        for k, v in linear.state_dict().items()
    }
    conv.load_state_dict(state)
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(linear(x)[0], conv.eval()(x)[0], atol=1e-5)


def test_frozen_stages_stay_frozen() -> None:
    net = ConvNeXt(arch=_ARCH, frozen_stages=1, out_indices=[0, 1])
    net.train()
    assert not net.stages[0].training and not net.downsample_layers[0].training
    assert net.stages[1].training
    assert not any(p.requires_grad for p in net.stages[0].parameters())
    assert all(p.requires_grad for p in net.stages[1].parameters())


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = ConvNeXt(arch=_ARCH, out_indices=[1], gap_before_final_norm=False)
    checkpointed = ConvNeXt(arch=_ARCH, out_indices=[1], gap_before_final_norm=False, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    for net in (plain, checkpointed):
        net.train()(x)[0].square().sum().backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name
