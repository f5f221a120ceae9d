"""YOLOXPAFPN: key layout, shapes, depthwise option, init.

Numerics against MMDetection: the yolox fixture (``test_one_stage_fixtures.py``) and the
depthwise ``csp_darknet`` golden (``tests/models/backbones/test_csp_darknet.py``).
"""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import ConvModule, DepthwiseSeparableConvModule
from detforge.models.necks import YOLOXPAFPN


def _feats() -> list[torch.Tensor]:
    return [torch.rand(2, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4))]


def test_shapes_and_key_layout() -> None:
    neck = YOLOXPAFPN([8, 16, 32], 12, num_csp_blocks=1).eval()
    with torch.no_grad():
        outs = neck(_feats())
    assert [tuple(o.shape) for o in outs] == [(2, 12, 16, 16), (2, 12, 8, 8), (2, 12, 4, 4)]
    keys = {k.split(".conv.")[0] for k in neck.state_dict() if ".conv." in k}
    assert {"reduce_layers.0", "reduce_layers.1", "downsamples.1", "out_convs.2"} <= keys
    # top-down: coarsest first; reduce_layers[0] takes the 32-channel level to 16
    assert neck.reduce_layers[0].conv.weight.shape == (16, 32, 1, 1)
    assert neck.top_down_blocks[1].final_conv.conv.out_channels == 8
    assert neck.bottom_up_blocks[1].final_conv.conv.out_channels == 32


def test_depthwise_downsamples_only() -> None:
    neck = YOLOXPAFPN([8, 16], 8, num_csp_blocks=1, use_depthwise=True)
    assert isinstance(neck.downsamples[0], DepthwiseSeparableConvModule)
    assert isinstance(neck.reduce_layers[0], ConvModule)
    assert isinstance(neck.top_down_blocks[0].blocks[0].conv2, DepthwiseSeparableConvModule)


def test_default_init_is_kaiming_uniform() -> None:
    neck = YOLOXPAFPN([8, 16], 8, num_csp_blocks=1)
    torch.nn.init.constant_(neck.out_convs[0].conv.weight, 3.0)
    neck.init_weights()
    w = neck.out_convs[0].conv.weight
    assert bool(w.abs().max() <= 1 / w[0].numel() ** 0.5)


def test_wrong_number_of_levels() -> None:
    with pytest.raises(ValueError, match="got 2 levels"):
        YOLOXPAFPN([8, 16, 32], 8)(_feats()[:2])
