"""DilatedEncoder (YOLOF): the MMDetection golden, the full-size layout, v2's init."""

from __future__ import annotations

import pytest
import torch

from detforge.models.necks import DilatedEncoder
from tests.models.component_golden import check_golden, check_layout


def test_golden() -> None:
    check_golden("dilated_encoder")


def test_full_size_yolof_layout() -> None:
    check_layout("dilated_encoder", "layout_yolof_r50_c5.json")


def test_uses_the_last_level_and_dilations() -> None:
    neck = DilatedEncoder(16, 8, 4, num_residual_blocks=3, block_dilations=[1, 2, 3]).eval()
    with torch.no_grad():
        outs = neck([torch.rand(1, 4, 12, 12), torch.rand(1, 16, 6, 6)])
    assert len(outs) == 1 and outs[0].shape == (1, 8, 6, 6)
    assert [b.conv2.conv.dilation for b in neck.dilated_encoder_blocks] == [(1, 1), (2, 2), (3, 3)]
    with pytest.raises(ValueError, match="block_dilations"):
        DilatedEncoder(16, 8, 4, num_residual_blocks=2, block_dilations=[2])


def test_init_weights_is_v2s() -> None:
    torch.manual_seed(0)
    neck = DilatedEncoder(64, 256, 128, num_residual_blocks=1, block_dilations=[2])
    for p in neck.parameters():
        torch.nn.init.constant_(p, 5.0)
    neck.init_weights()
    assert bool((neck.lateral_conv.bias == 0).all()) and bool((neck.fpn_norm.weight == 1).all())
    block = neck.dilated_encoder_blocks[0]
    assert abs(block.conv2.conv.weight.std().item() - 0.01) < 1e-3
    assert bool((block.conv3.bn.weight == 1).all())
