"""SSDNeck and L2Norm: v2.28's keys, the L2 norm's numerics and init, level arguments.

Numerics against MMDetection: the ssd fixture (SSDLite, depthwise, no L2 norm;
``test_one_stage_fixtures.py``) and the ``ssd_vgg`` golden (plain convs with the L2 norm;
``tests/models/backbones/test_ssd_vgg.py``).
"""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import DepthwiseSeparableConvModule
from detforge.models.necks import SSDNeck
from detforge.models.necks.ssd_neck import L2Norm


def test_l2_norm_numerics_and_dtype() -> None:
    norm = L2Norm(3, scale=10.0)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.randn(2, 3, 4, 5)
    want = x / x.norm(dim=1, keepdim=True) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), want)
    assert norm(x.half()).dtype == torch.float16


def test_ssd300_levels_keys_and_init() -> None:
    neck = SSDNeck(
        in_channels=(16, 32),
        out_channels=(16, 32, 16, 8, 8, 8),
        level_strides=(2, 2, 1, 1),
        level_paddings=(1, 1, 0, 0),
        l2_norm_scale=20,
    )
    neck.init_weights()
    assert bool((neck.l2_norm.weight == 20).all())
    assert "extra_layers.3.1.conv.weight" in neck.state_dict()
    assert neck.extra_layers[0][0].conv.in_channels == 32
    assert neck.extra_layers[1][0].conv.out_channels == 4  # half the level's channels
    feats = (torch.rand(1, 16, 38, 38), torch.rand(1, 32, 19, 19))
    with torch.no_grad():
        outs = neck.eval()(feats)
    assert [o.shape[-1] for o in outs] == [38, 19, 10, 5, 3, 1]  # SSD300's pyramid
    assert [o.shape[1] for o in outs] == [16, 32, 16, 8, 8, 8]


def test_last_kernel_size_and_depthwise() -> None:
    neck = SSDNeck(
        (8,),
        (8, 8, 8),
        level_strides=(2, 1),
        level_paddings=(1, 1),
        l2_norm_scale=None,
        last_kernel_size=4,
        use_depthwise=True,
    )
    assert not hasattr(neck, "l2_norm")
    assert isinstance(neck.extra_layers[1][1], DepthwiseSeparableConvModule)
    assert neck.extra_layers[1][1].depthwise_conv.conv.kernel_size == (4, 4)
    assert neck.extra_layers[0][1].depthwise_conv.conv.kernel_size == (3, 3)


def test_level_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="must start with in_channels"):
        SSDNeck((8, 16), (8, 32, 8), level_strides=(2,), level_paddings=(1,))
    with pytest.raises(ValueError, match="one entry per extra level"):
        SSDNeck((8,), (8, 8, 8), level_strides=(2,), level_paddings=(1,))
