"""FPN_CARAFE (and the CARAFE mask head): MMDetection's layouts and outputs, wiring, errors."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import CARAFEPack
from detforge.models.necks import FPN_CARAFE
from tests.models.neck_goldens import assert_layout, build, layout, run_golden


@pytest.mark.parametrize("file", ["layout.json", "layout_mask_head.json"])
def test_full_size_layout_is_mmdetections(file: str) -> None:
    expected = layout("fpn_carafe", file)
    assert_layout(build(expected["config"]), expected)


@pytest.mark.parametrize("case", ["", "nearest", "mask_head"])
def test_matches_mmdetection(case: str) -> None:
    """mmcv's CARAFE kernel compiled for the CPU (tools/goldens/mmcv_carafe_cpu.py)."""
    assert run_golden("fpn_carafe", case=case) < 1e-4


def test_top_down_runs_through_the_extra_levels() -> None:
    neck = FPN_CARAFE([4, 8], 4, num_outs=3, upsample_cfg=dict(type="nearest")).eval()
    assert len(neck.lateral_convs) == len(neck.fpn_convs) == 3 and len(neck.upsample_modules) == 2
    assert neck.lateral_convs[2].stride == (2, 2) and neck.lateral_convs[2].in_channels == 8
    x = [torch.randn(1, 4, 10, 10), torch.randn(1, 8, 5, 5)]
    lat = [neck.lateral_convs[0](x[0]), neck.lateral_convs[1](x[1])]
    lat.append(neck.lateral_convs[2](x[1]))  # 3x3
    lat[1] = lat[1] + lat[2].repeat_interleave(2, 2).repeat_interleave(2, 3)[:, :, :5, :5]
    lat[0] = lat[0] + lat[1].repeat_interleave(2, 2).repeat_interleave(2, 3)
    for got, lateral, conv in zip(neck(x), lat, neck.fpn_convs, strict=True):
        torch.testing.assert_close(got, conv(lateral))


def test_carafe_upsamplers_and_init() -> None:
    neck = FPN_CARAFE([4, 8, 16], 8, num_outs=4)
    assert all(isinstance(m, CARAFEPack) for m in neck.upsample_modules)
    assert [m.channels for m in neck.upsample_modules] == [8, 8, 8]
    neck.init_weights()
    assert neck.upsample_modules[0].content_encoder.weight.std() < 0.002
    assert neck.fpn_convs[0].conv.bias.abs().max() == 0  # Xavier with zero bias


def test_errors_name_the_neck() -> None:
    with pytest.raises(ValueError, match="'deconv'"):
        FPN_CARAFE([4, 8], 4, num_outs=2, upsample_cfg=dict(type="deconv"))
    with pytest.raises(ValueError, match="FPN_CARAFE: order"):
        FPN_CARAFE([4, 8], 4, num_outs=2, order=("norm", "conv", "act"))
    with pytest.raises(ValueError, match="up_kernal"):
        FPN_CARAFE([4, 8], 4, num_outs=2, upsample_cfg=dict(type="carafe", up_kernal=3))
    with pytest.raises(ValueError, match="FPN_CARAFE: init_cfg"):
        FPN_CARAFE([4, 8], 4, num_outs=2, init_cfg=dict(type="Normal"))
    no_upsampling = FPN_CARAFE([4, 8], 4, num_outs=2, upsample_cfg=dict(type=None))
    with pytest.raises(ValueError, match="smaller than level 0"):
        no_upsampling([torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 4, 4)])
