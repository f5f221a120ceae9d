"""Full-size models built from our configs have exactly MMDetection's state_dict layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.config import load_config
from detforge.models import build_detector
from tests.conftest import shared_data_dir

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
LAYOUTS = shared_data_dir().parent / "fixtures" / "mmdet" / "layouts"
#: layouts of the small-golden families (absolute paths: ``LAYOUTS / path`` is the path itself)
GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py", "faster_rcnn_r50.json"),
        ("retinanet/retinanet_r50_fpn_1x_coco.py", "retinanet_r50.json"),
        ("fsaf/fsaf_r50_fpn_1x_coco.py", GOLDENS / "fsaf" / "layout.json"),
        ("ddod/ddod_r50_fpn_1x_coco.py", GOLDENS / "ddod" / "layout.json"),
        (
            "autoassign/autoassign_r50_fpn_8x2_1x_coco.py",
            GOLDENS / "autoassign" / "layout.json",
        ),
        (
            "foveabox/fovea_align_r50_fpn_gn-head_4x4_2x_coco.py",
            GOLDENS / "foveabox" / "layout.json",
        ),
    ],
)
def test_state_dict_layout_and_parameter_counts(config: str, layout: str | Path) -> None:
    path = LAYOUTS / layout
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    expected = json.loads(path.read_text())
    model = build_detector(load_config(CONFIGS / config, environ={}).cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"]
