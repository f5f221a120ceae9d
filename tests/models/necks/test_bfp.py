"""BFP: MMDetection's layout and outputs, gather/scatter by hand, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detforge.models.layers import NonLocal2d
from detforge.models.necks import BFP
from tests.models.neck_goldens import assert_layout, build, layout, run_golden


def test_full_size_layout_is_mmdetections() -> None:
    expected = layout("bfp")
    assert_layout(build(expected["config"]), expected)


@pytest.mark.parametrize("case", ["", "conv"])
def test_matches_mmdetection(case: str) -> None:
    assert run_golden("bfp", case=case) < 1e-4


def test_gather_and_scatter_by_hand() -> None:
    x = [torch.randn(1, 2, 8, 8), torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2)]
    bsf = (F.adaptive_max_pool2d(x[0], 4) + x[1] + F.interpolate(x[2], size=(4, 4))) / 3
    outs = BFP(2, 3, refine_level=1)(x)
    torch.testing.assert_close(outs[0], x[0] + F.interpolate(bsf, size=(8, 8)))
    torch.testing.assert_close(outs[1], x[1] + bsf)
    torch.testing.assert_close(outs[2], x[2] + F.adaptive_max_pool2d(bsf, 2))


def test_refine_blocks_and_init() -> None:
    bfp = BFP(4, 3, refine_type="non_local")
    assert isinstance(bfp.refine, NonLocal2d) and bfp.refine.inter_channels == 4
    assert not bfp.refine.use_scale
    bfp.init_weights()  # Xavier everywhere, then the non-local block's own init
    assert bfp.refine.conv_out.conv.weight.abs().max() == 0
    assert BFP(4, 3, refine_type="conv").refine.conv.kernel_size == (3, 3)
    assert not hasattr(BFP(4, 3), "refine")


def test_errors_name_the_neck() -> None:
    with pytest.raises(ValueError, match="BFP: refine_type"):
        BFP(4, 3, refine_type="attention")
    with pytest.raises(ValueError, match="BFP: refine_level=3"):
        BFP(4, 3, refine_level=3)
    with pytest.raises(ValueError, match="BFP: got 2 input levels"):
        BFP(4, 3)([torch.zeros(1, 4, 4, 4)] * 2)
