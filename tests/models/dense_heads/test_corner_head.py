"""Corner pooling against its definition; CornerHead's argument checks."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.dense_heads import CentripetalHead, CornerHead
from detforge.models.dense_heads.corner_head import corner_pool


def _naive(x: torch.Tensor, direction: str) -> torch.Tensor:
    out = torch.empty_like(x)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):
            window = {
                "top": x[..., i:, j],
                "bottom": x[..., : i + 1, j],
                "left": x[..., i, j:],
                "right": x[..., i, : j + 1],
            }[direction]
            out[..., i, j] = window.max(dim=-1).values
    return out


@pytest.mark.parametrize("direction", ["top", "bottom", "left", "right"])
def test_corner_pool_is_the_max_towards_the_far_border(direction: str) -> None:
    x = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(corner_pool(x, direction), _naive(x, direction), atol=0, rtol=0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="direction"):
        corner_pool(torch.zeros(1, 1, 2, 2), "up")
    with pytest.raises(ConfigKeyError, match="init_cfg"):
        CornerHead(num_classes=2, in_channels=4, init_cfg=dict(type="Normal"))
    with pytest.raises(ValueError, match="must be 2"):
        CentripetalHead(num_classes=2, in_channels=4, guiding_shift_channels=3)
    head = CornerHead(num_classes=2, in_channels=4, num_feat_levels=1)
    with pytest.raises(ValueError, match="2 feature maps for num_feat_levels=1"):
        head([torch.zeros(1, 4, 8, 8)] * 2)
