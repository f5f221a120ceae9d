"""FPG: MMDetection's layouts and outputs, grid wiring, v2's transition quirks, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from detforge.models.necks import FPG
from tests.models.neck_goldens import assert_layout, build, layout, run_golden

DOWN = dict(type="interpolation_conv", kernel_size=3)
SKIP = dict(type="conv", kernel_size=1)


@pytest.mark.parametrize("file", ["layout.json", "layout_retinanet.json"])
def test_full_size_layout_is_mmdetections(file: str) -> None:
    expected = layout("fpg", file)
    assert_layout(build(expected["config"]), expected)


@pytest.mark.parametrize("case", ["", "td"])
def test_matches_mmdetection(case: str) -> None:
    assert run_golden("fpg", case=case) < 1e-4


def _small(**kwargs: Any) -> FPG:
    args: dict[str, Any] = dict(
        in_channels=[4, 8],
        out_channels=4,
        num_outs=3,
        stack_times=2,
        paths=["bu", "bu"],
        across_down_trans=DOWN,
        across_skip_trans=SKIP,
        skip_inds=[(0,), (), ()],
    )
    args.update(kwargs)
    return FPG(**args)


def test_a_node_sums_its_transitions() -> None:
    fpg = _small().eval()
    x = [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]
    p0 = [fpg.lateral_convs[0](x[0]), fpg.lateral_convs[1](x[1])]
    p0.append(p0[1][:, :, ::2, ::2])  # MaxPool2d(1, stride=2)
    t = fpg.fpn_transitions[0]
    assert len(t[0]) == 0  # level 0 is copied in pathway 0
    level1 = (
        t[1]["same_up"](p0[0])
        + t[1]["across_lateral"](p0[1])
        + t[1]["across_down"](p0[2])
        + t[1]["across_skip"](p0[1])
    )
    level2 = t[2]["same_up"](level1) + t[2]["across_lateral"](p0[2]) + t[2]["across_skip"](p0[2])
    assert t[2]["across_down"] is None and t[0:1] is not None
    with torch.no_grad():
        fpg_out = fpg(x)
        # run pathway 1 through the module itself and compare the second level's input
        assert fpg_out[1].shape == (1, 4, 4, 4)
        want = fpg.output_transition[2].conv_out(_pathway(fpg, 1, [p0[0], level1, level2], p0)[2])
    torch.testing.assert_close(fpg_out[2], want)


def _pathway(fpg: FPG, s: int, current: list[torch.Tensor], first: list[torch.Tensor]):
    t = fpg.fpn_transitions[s]
    out = [t[0]["across_lateral"](current[0]) + t[0]["across_down"](current[1])]
    out[0] = out[0] + t[0]["across_skip"](first[0])
    for lvl in (1, 2):
        node = t[lvl]["same_up"](out[-1]) + t[lvl]["across_lateral"](current[lvl])
        if lvl < 2:
            node = node + t[lvl]["across_down"](current[lvl + 1])
        out.append(node + t[lvl]["across_skip"](first[lvl]))
    return out


def test_v2_default_transitions() -> None:
    fpg = FPG([4, 8], 4, num_outs=3, stack_times=1, paths=["bu"], skip_inds=[(), (), ()])
    assert isinstance(fpg.fpn_transitions[0][1]["across_skip"], nn.Identity)
    assert fpg.fpn_transitions[0][0]["same_up"] is None  # nothing below level 0
    assert fpg.fpn_transitions[0][2]["across_down"] is None  # nothing above the top


def test_errors_name_the_neck() -> None:
    with pytest.raises(ValueError, match="FPG: paths"):
        _small(paths=["bu", "sideways"])
    with pytest.raises(ValueError, match="FPG: skip_inds"):
        _small(skip_inds=None)
    with pytest.raises(ValueError, match="FPG: transition type"):
        _small(across_down_trans=dict(type="deconv"))
    with pytest.raises(ValueError, match="FPG: inter_channels"):
        _small(inter_channels=[4, 4])
    with pytest.raises(ValueError, match="FPG: got 1 input"):
        _small()([torch.zeros(1, 4, 8, 8)])
