"""Darknet-53: layout, strides, v2's frozen-stage counting, and the MMDetection golden.

The golden (``tests/data/goldens/darknet``) runs the full-width Darknet-53 with formula weights
(``tools/goldens/weights.py``) and YOLOv3's neck on a 1x3x64x64 input.
"""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigKeyError
from detforge.models.backbones import Darknet
from tests.models.component_golden import check_golden, check_layout


def test_golden_darknet53_and_yolov3_neck() -> None:
    check_golden("darknet")


def test_full_size_yolov3_d53_layout() -> None:
    check_layout("darknet", "layout_yolov3_d53.json")


def test_blocks_and_strides() -> None:
    with torch.device("meta"):
        net = Darknet(out_indices=(0, 1, 2, 3, 4, 5))
    assert [len(getattr(net, f"conv_res_block{i}")) - 1 for i in range(1, 6)] == [1, 2, 8, 8, 4]
    assert net.conv_res_block5.res3.conv1.conv.weight.shape == (512, 1024, 1, 1)
    assert net.conv_res_block5.conv.conv.stride == (2, 2)


def test_frozen_stages_count_conv1_as_the_first() -> None:
    net = Darknet(frozen_stages=2, norm_eval=False)
    net.train()
    assert not net.conv1.training and not net.conv_res_block1.training
    assert not any(p.requires_grad for p in net.conv_res_block1.parameters())
    assert net.conv_res_block2.training
    assert all(p.requires_grad for p in net.conv_res_block2.parameters())


def test_norm_eval_default_and_errors() -> None:
    net = Darknet().train()
    assert not net.conv_res_block3.res0.conv1.bn.training  # norm_eval=True by default
    with pytest.raises(ConfigKeyError, match="depth 21"):
        Darknet(depth=21)
    with pytest.warns(DeprecationWarning, match="pretrained is deprecated"):
        net = Darknet(pretrained="open-mmlab://darknet53")
    assert net.init_cfg == {"type": "Pretrained", "checkpoint": "open-mmlab://darknet53"}
