"""ResNet/ResNeXt ``plugins`` (v2): stage masks, positions, channels, names, order, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from detforge.models.backbones import ResNet, ResNeXt
from detforge.models.layers import ContextBlock, GeneralizedAttention, NonLocal2d

CALLS: list[str] = []


class Recorder(nn.Module):
    """A plugin that records where it ran and keeps its input."""

    def __init__(self, in_channels: int, tag: str) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.tag = tag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CALLS.append(f"{self.tag}:{x.shape[1]}")
        return x


def _plugins(*specs: tuple[Any, str, tuple[bool, ...] | None]) -> list[dict[str, Any]]:
    out = []
    for cfg, position, stages in specs:
        spec: dict[str, Any] = dict(cfg=cfg, position=position)
        if stages is not None:
            spec["stages"] = stages
        out.append(spec)
    return out


def test_stage_masks_positions_and_names() -> None:
    net = ResNet(
        depth=50,
        base_channels=8,
        plugins=_plugins(
            (dict(type="ContextBlock", ratio=0.25), "after_conv3", (False, True, True, True)),
            (
                dict(type="GeneralizedAttention", num_heads=2),
                "after_conv2",
                (False, False, True, True),
            ),
            (dict(type="NonLocal2d", postfix=1), "after_conv1", None),
            (dict(type="NonLocal2d", postfix=2), "after_conv1", (True, False, False, False)),
        ),
    )
    assert not hasattr(net.layer1[0], "context_block")
    for stage, planes in ((2, 16), (3, 32), (4, 64)):
        for block in getattr(net, f"layer{stage}"):
            assert isinstance(block.context_block, ContextBlock)
            assert block.context_block.in_channels == planes * 4
            assert block.after_conv3_plugin_names == ["context_block"]
            assert isinstance(block.nonlocal_block1, NonLocal2d)
            assert block.nonlocal_block1.in_channels == planes
    assert isinstance(net.layer3[0].gen_attention_block, GeneralizedAttention)
    assert net.layer3[0].gen_attention_block.in_channels == 32
    assert not hasattr(net.layer2[0], "gen_attention_block")
    assert net.layer1[0].after_conv1_plugin_names == ["nonlocal_block1", "nonlocal_block2"]
    assert net.layer2[0].after_conv1_plugin_names == ["nonlocal_block1"]
    keys = net.state_dict()
    assert "layer2.0.context_block.channel_add_conv.3.weight" in keys
    assert "layer4.2.gen_attention_block.appr_bias" in keys
    assert "layer1.0.nonlocal_block2.conv_out.conv.weight" in keys
    with torch.no_grad():
        outs = net.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]


def test_plugins_run_after_their_conv_in_order() -> None:
    CALLS.clear()
    net = ResNet(
        depth=50,
        base_channels=8,
        num_stages=1,
        strides=(1,),
        dilations=(1,),
        out_indices=(0,),
        plugins=_plugins(
            (dict(type=Recorder, tag="c3", postfix=3), "after_conv3", None),
            (dict(type=Recorder, tag="c1", postfix="a"), "after_conv1", None),
            (dict(type=Recorder, tag="c2", postfix=2), "after_conv2", None),
            (dict(type=Recorder, tag="c1b", postfix="b"), "after_conv1", None),
        ),
    )
    with torch.no_grad():
        net.eval()(torch.randn(1, 3, 32, 32))
    assert CALLS[:4] == ["c1:8", "c1b:8", "c2:8", "c3:32"]
    assert len(CALLS) == 4 * 3  # three blocks


def test_resnext_plugins_get_the_group_width() -> None:
    net = ResNeXt(
        depth=50,
        groups=4,
        base_width=4,
        base_channels=16,
        num_stages=1,
        strides=(1,),
        dilations=(1,),
        out_indices=(0,),
        plugins=_plugins((dict(type="ContextBlock", ratio=0.5), "after_conv2", None)),
    )
    block = net.layer1[0]
    assert block.conv2.out_channels == 16 and block.context_block.in_channels == 16
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 32, 32))[0].shape == (1, 64, 8, 8)


@pytest.mark.parametrize(
    ("plugins", "error", "match"),
    [
        (
            _plugins((dict(type="ContextBlock", ratio=1), "after_conv4", None)),
            ValueError,
            "position",
        ),
        (
            _plugins((dict(type="ContextBlock", ratio=1), "after_conv3", (True, True))),
            ValueError,
            "stages",
        ),
        (
            [dict(cfg=dict(type="ContextBlock", ratio=1), position="after_conv3", stage=(True,))],
            ValueError,
            "unexpected keys",
        ),
        ([dict(position="after_conv3")], ValueError, "cfg"),
        (
            _plugins(
                (dict(type="ContextBlock", ratio=1), "after_conv3", None),
                (dict(type="ContextBlock", ratio=1), "after_conv3", None),
            ),
            ValueError,
            "duplicate plugin name 'context_block'",
        ),
    ],
)
def test_plugin_errors(plugins: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ResNet(depth=50, base_channels=8, plugins=plugins)


def test_basic_block_refuses_plugins_as_v2() -> None:
    with pytest.raises(NotImplementedError, match="BasicBlock: plugins"):
        ResNet(
            depth=18, plugins=_plugins((dict(type="ContextBlock", ratio=1), "after_conv3", None))
        )


def test_v2_init_overrides_the_context_block_zero_init() -> None:
    """v2's backbone Kaiming init reaches the ContextBlock convs (it has no init_weights)."""
    net = ResNet(
        depth=50,
        base_channels=8,
        plugins=_plugins((dict(type="ContextBlock", ratio=0.5), "after_conv3", None)),
    )
    last = net.layer1[0].context_block.channel_add_conv[3]
    assert last.weight.abs().sum() == 0
    net.init_weights()
    assert last.weight.abs().sum() > 0
