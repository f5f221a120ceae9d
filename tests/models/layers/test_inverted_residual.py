"""InvertedResidual, SELayer and make_divisible (MMDetection v2 semantics)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import InvertedResidual, SELayer, make_divisible

# one thread, as the goldens were made (and fast on a loaded machine)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_make_divisible_rounds_to_nearest_and_keeps_ninety_percent() -> None:
    assert make_divisible(38.4, 8) == 40 and make_divisible(33.9, 8) == 32
    assert make_divisible(35.9, 8) == 40  # 32 would lose more than 10% of 35.9
    assert make_divisible(3, 8) == 8 and make_divisible(10, 8, min_value=16) == 16


def test_se_layer_scales_channels_by_a_gate_in_zero_one() -> None:
    se = SELayer(8, ratio=2.5, act_cfg=(dict(type="ReLU"), dict(type="Sigmoid")))
    assert se.conv1.conv.out_channels == 3  # int(8 / 2.5)
    x = torch.rand(2, 8, 4, 4) + 1
    gate = se(x) / x
    assert torch.all((gate > 0) & (gate < 1))
    torch.testing.assert_close(gate, gate[..., :1, :1].expand_as(gate))  # one gate per channel
    with pytest.raises(ValueError, match="two dicts"):
        SELayer(8, act_cfg=(dict(type="ReLU"),))


def test_inverted_residual_structure_shortcut_and_checkpointing() -> None:
    block = InvertedResidual(8, 8, 16, kernel_size=5, se_cfg=dict(channels=16, ratio=4))
    assert block.depthwise_conv.conv.groups == 16 and block.depthwise_conv.conv.padding == (2, 2)
    assert not InvertedResidual(8, 16, 16).with_res_shortcut
    assert not InvertedResidual(8, 8, 16, stride=2).with_res_shortcut
    block.eval()
    x = torch.rand(1, 8, 6, 6, requires_grad=True)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + block._branch(x))
    ckpt = InvertedResidual(8, 8, 16, with_cp=True, drop_path_rate=0.5)
    ckpt.load_state_dict(InvertedResidual(8, 8, 16).state_dict())
    ckpt.eval()(x).sum().backward()  # drop path is the identity in eval mode
    assert x.grad is not None
    with pytest.raises(ValueError, match="mid_channels"):
        InvertedResidual(8, 8, 16, with_expand_conv=False)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        InvertedResidual(8, 8, 16, stride=3)
