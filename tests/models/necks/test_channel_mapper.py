"""ChannelMapper: MMDetection's layout and outputs, extra levels, errors."""

from __future__ import annotations

import pytest
import torch

from detforge.models.necks import ChannelMapper
from tests.models.neck_goldens import assert_layout, build, layout, run_golden


def test_full_size_layout_is_mmdetections() -> None:
    expected = layout("channel_mapper")
    assert_layout(build(expected["config"]), expected)


@pytest.mark.parametrize("case", ["", "relu"])
def test_matches_mmdetection(case: str) -> None:
    assert run_golden("channel_mapper", case=case) < 1e-4


def test_extra_levels_start_from_the_last_input() -> None:
    mapper = ChannelMapper([2, 3], 4, kernel_size=1, num_outs=4, act_cfg=None)
    x = [torch.randn(1, 2, 8, 8), torch.randn(1, 3, 4, 4)]
    outs = mapper(x)
    assert [o.shape[-1] for o in outs] == [8, 4, 2, 1]
    assert mapper.extra_convs is not None and mapper.extra_convs[0].in_channels == 3
    torch.testing.assert_close(outs[2], mapper.extra_convs[0](x[1]))
    torch.testing.assert_close(outs[3], mapper.extra_convs[1](outs[2]))
    assert ChannelMapper([2, 3], 4).extra_convs is None


def test_errors_name_the_neck() -> None:
    with pytest.raises(ValueError, match="num_outs=1"):
        ChannelMapper([2, 3], 4, num_outs=1)
    with pytest.raises(ValueError, match="ChannelMapper: got 1 input"):
        ChannelMapper([2, 3], 4)([torch.zeros(1, 2, 4, 4)])
    with pytest.raises(TypeError, match="ChannelMapper: in_channels"):
        ChannelMapper(2, 4)  # type: ignore[arg-type]
