"""Config mistakes in real model configs fail with the config path and the closest name."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.config import load_config
from detforge.errors import UnexpectedKeyError, UnknownTypeError
from detforge.models import build_detector

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_misspelled_neck_type_names_fpn() -> None:
    cfg = load_config(
        CONFIGS / "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
        cfg_options={"model.neck.type": "FPNN"},
        environ={},
    ).cfg
    with pytest.raises(UnknownTypeError) as info:
        build_detector(cfg.model)
    message = str(info.value)
    assert message.startswith("model.neck:") and "'FPN'" in message


def test_misspelled_head_keyword_names_num_classes_and_the_path() -> None:
    cfg = load_config(
        CONFIGS / "retinanet/retinanet_r50_fpn_1x_coco.py",
        cfg_options={"model.bbox_head.num_clases": 3},
        environ={},
    ).cfg
    with pytest.raises(UnexpectedKeyError) as info:
        build_detector(cfg.model)
    message = str(info.value)
    assert message.startswith("model.bbox_head:")
    assert "'num_clases'" in message and "did you mean 'num_classes'" in message


def test_nested_anchor_generator_path() -> None:
    cfg = load_config(
        CONFIGS / "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
        cfg_options={"model.rpn_head.anchor_generator.scale": [8]},
        environ={},
    ).cfg
    with pytest.raises(UnexpectedKeyError) as info:
        build_detector(cfg.model)
    message = str(info.value)
    assert message.startswith("model.rpn_head.anchor_generator:")
    assert "did you mean 'scales'" in message
