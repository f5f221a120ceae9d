"""PAFPN: MMDetection's layout and outputs, and the bottom-up path by hand."""

from __future__ import annotations

import pytest
import torch

from detforge.models.necks import FPN, PAFPN
from tests.models.neck_goldens import assert_layout, build, layout, run_golden


def test_full_size_layout_is_mmdetections() -> None:
    expected = layout("pafpn")
    assert_layout(build(expected["config"]), expected)


@pytest.mark.parametrize("case", ["", "extra_convs"])
def test_matches_mmdetection(case: str) -> None:
    assert run_golden("pafpn", case=case) < 1e-4


def test_is_fpn_plus_a_bottom_up_path() -> None:
    torch.manual_seed(0)
    neck = PAFPN([4, 8, 16], 6, num_outs=4).eval()
    fpn = FPN([4, 8, 16], 6, num_outs=3).eval()
    fpn.load_state_dict(
        {
            k: v
            for k, v in neck.state_dict().items()
            if k.split(".")[0] in ("lateral_convs", "fpn_convs")
        }
    )
    x = [torch.randn(1, c, s, s) for c, s in zip([4, 8, 16], [16, 8, 4], strict=True)]
    p = list(fpn(x))
    p[1] = p[1] + neck.downsample_convs[0](p[0])
    p[2] = p[2] + neck.downsample_convs[1](p[1])
    want = [p[0], neck.pafpn_convs[0](p[1]), neck.pafpn_convs[1](p[2])]
    got = neck(x)
    for g, w in zip(got[:3], want, strict=True):
        torch.testing.assert_close(g, w)
    torch.testing.assert_close(got[3], got[2][:, :, ::2, ::2])  # max_pool2d(1, stride=2)


def test_arguments_are_checked_through_the_chain() -> None:
    with pytest.raises(ValueError, match="PAFPN: add_extra_convs"):
        PAFPN([4, 8], 4, num_outs=3, add_extra_convs="on_top")
    with pytest.raises(TypeError, match="PAFPN: in_channels"):
        PAFPN(4, 4, num_outs=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PAFPN([4, 8], 4, num_outs=3, upsample_mode="nearest")  # type: ignore[call-arg]
