"""NASFCOS_FPN: MMDetection's layout (DCNv2 cells) and outputs, init, errors."""

from __future__ import annotations

import pytest
import torch

from detforge.models.necks import NASFCOS_FPN
from tests.models.neck_goldens import assert_layout, build, layout, run_golden


def test_full_size_layout_is_mmdetections() -> None:
    expected = layout("nasfcos_fpn")
    assert_layout(build(expected["config"]), expected)


def test_matches_mmdetection() -> None:
    assert run_golden("nasfcos_fpn") < 1e-4


def test_structure_and_init() -> None:
    neck = NASFCOS_FPN([2, 4, 8, 16], 8, num_outs=5, norm_cfg=dict(type="BN"))
    assert list(neck.fpn) == ["c22_1", "c22_2", "c32", "c02", "c42", "c36", "c61"]
    assert neck.fpn["c32"].with_input1_conv and not neck.fpn["c32"].with_input2_conv
    out_conv = neck.fpn["c61"].out_conv
    assert out_conv.order == ("norm", "act", "conv") and out_conv.conv.groups == 8
    assert neck.extra_downsamples[0].act_cfg is None and neck.extra_downsamples[1].act_cfg
    before = out_conv.conv.weight.clone()
    for conv in (neck.adapt_convs[0].conv, neck.extra_downsamples[0].conv):
        torch.nn.init.zeros_(conv.weight)
    neck.init_weights()
    assert neck.adapt_convs[0].conv.weight.abs().max() > 0
    assert neck.extra_downsamples[0].conv.weight.abs().max() > 0
    torch.testing.assert_close(out_conv.conv.weight, before)  # v2 leaves the cells alone


def test_errors_name_the_neck() -> None:
    with pytest.raises(ValueError, match="NASFCOS_FPN: init_cfg"):
        NASFCOS_FPN([2, 4, 8, 16], 8, num_outs=5, init_cfg=dict(type="Normal"))
    with pytest.raises(ValueError, match="NASFCOS_FPN: the cells combine three"):
        NASFCOS_FPN([2, 4, 8], 8, num_outs=3, start_level=0)
