"""NASFPN: MMDetection's layout and outputs, cell structure, errors."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import GlobalPoolingCell, SumCell
from detforge.models.necks import NASFPN
from tests.models.neck_goldens import assert_layout, build, layout, run_golden


def test_full_size_layout_is_mmdetections() -> None:
    expected = layout("nas_fpn")
    assert_layout(build(expected["config"]), expected)


def test_matches_mmdetection() -> None:
    """Odd level sizes: the cells pad before pooling and compare sizes lexicographically."""
    assert run_golden("nas_fpn") < 1e-4


def test_stage_cells() -> None:
    neck = NASFPN([4, 8, 16], 8, num_outs=5, stack_times=2)
    stage = neck.fpn_stages[1]
    assert list(stage) == [
        "gp_64_4", "sum_44_4", "sum_43_3", "sum_34_4", "gp_43_5",
        "sum_55_5", "gp_54_7", "sum_77_7", "gp_75_6",
    ]  # fmt: skip
    assert isinstance(stage["gp_64_4"], GlobalPoolingCell) and stage["gp_64_4"].with_out_conv
    assert not stage["gp_43_5"].with_out_conv and not stage["gp_54_7"].with_out_conv
    assert isinstance(stage["sum_77_7"], SumCell)
    assert len(neck.extra_downsamples) == 2
    feats = [torch.rand(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([4, 8, 16])]
    assert [tuple(o.shape) for o in neck(feats)] == [(1, 8, s, s) for s in (32, 16, 8, 4, 2)]


def test_errors_name_the_neck() -> None:
    with pytest.raises(ValueError, match="NASFPN: the stages combine five levels"):
        NASFPN([4, 8, 16], 8, num_outs=4, stack_times=1)
    with pytest.raises(ValueError, match="NASFPN: num_outs=2"):
        NASFPN([4, 8, 16], 8, num_outs=2, stack_times=1)
    with pytest.raises(ValueError, match="NASFPN: got 2 input levels"):
        NASFPN([4, 8, 16], 8, num_outs=5, stack_times=1)([torch.zeros(1, 4, 8, 8)] * 2)
