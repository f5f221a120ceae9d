"""NonLocal2d: mmcv's keys and init, the four pairwise modes against mmcv and by hand."""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import NonLocal2d
from tests.models.neck_goldens import run_golden

MODES = ["embedded_gaussian", "gaussian", "dot_product", "concatenation"]


@pytest.mark.parametrize("mode", MODES)
def test_matches_mmcv(mode: str) -> None:
    assert run_golden("bfp", case=f"nonlocal_{mode}") < 1e-4


def test_embedded_gaussian_by_hand() -> None:
    block = NonLocal2d(4, reduction=2, use_scale=True, zeros_init=False)
    x = torch.randn(2, 4, 3, 5)
    g, theta, phi = (m.conv(x).flatten(2) for m in (block.g, block.theta, block.phi))
    weight = (theta.transpose(1, 2) @ phi / 2**0.5).softmax(-1)  # [2, 15, 15]
    y = (weight @ g.transpose(1, 2)).transpose(1, 2).reshape(2, 2, 3, 5)
    torch.testing.assert_close(block(x), x + block.conv_out(y))


def test_keys_init_and_sub_sampling() -> None:
    block = NonLocal2d(8, sub_sample=True, norm_cfg=dict(type="BN"))
    assert list(block.state_dict())[:4] == [
        "g.0.conv.weight",
        "g.0.conv.bias",
        "conv_out.conv.weight",
        "conv_out.bn.weight",  # no conv bias before a norm
    ]
    assert "phi.0.conv.weight" in block.state_dict() and "theta.conv.weight" in block.state_dict()
    assert block.conv_out.norm is not None and block.conv_out.norm.weight.abs().max() == 0
    x = torch.randn(1, 8, 6, 4)
    torch.testing.assert_close(block(x), x)  # a new block is the identity
    gaussian = NonLocal2d(8, mode="gaussian")
    assert not hasattr(gaussian, "theta") and sorted(
        {k.split(".")[0] for k in gaussian.state_dict()}
    ) == ["conv_out", "g"]
    concat = NonLocal2d(8, mode="concatenation")
    assert concat.concat_project.conv.weight.shape == (1, 8, 1, 1)
    with pytest.raises(ValueError, match="mode"):
        NonLocal2d(8, mode="cosine")
