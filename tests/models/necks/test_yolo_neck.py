"""YOLOV3Neck: coarse-to-fine processing, key layout, errors.

Numerics against MMDetection: the yolov3 fixture (``test_one_stage_fixtures.py``) and the
``darknet`` golden (``tests/models/backbones/test_darknet.py``).
"""

from __future__ import annotations

import pytest
import torch

from detforge.models.necks import YOLOV3Neck


def test_order_shapes_and_keys() -> None:
    neck = YOLOV3Neck(3, in_channels=[64, 32, 16], out_channels=[16, 8, 4]).eval()
    feats = [torch.rand(1, 16, 16, 16), torch.rand(1, 32, 8, 8), torch.rand(1, 64, 4, 4)]
    with torch.no_grad():
        outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 16, 4, 4), (1, 8, 8, 8), (1, 4, 16, 16)]
    # detect2 sees the upsampled conv1 output (8) concatenated with the 32-channel map
    assert neck.detect2.conv1.conv.in_channels == 40
    assert neck.conv2.conv.weight.shape == (4, 8, 1, 1)
    assert neck.detect1.conv2.conv.out_channels == 32
    assert neck.detect1.conv1.activate.negative_slope == 0.1


def test_argument_and_input_checks() -> None:
    with pytest.raises(ValueError, match="num_scales=3"):
        YOLOV3Neck(3, in_channels=[8, 4], out_channels=[4, 2])
    neck = YOLOV3Neck(2, in_channels=[8, 4], out_channels=[4, 2])
    with pytest.raises(ValueError, match="got 1 maps"):
        neck([torch.rand(1, 8, 2, 2)])
