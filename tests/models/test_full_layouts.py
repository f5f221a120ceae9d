"""Full-size models built from our configs have exactly MMDetection's state_dict layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import shared_data_dir
from tests.models.golden import assert_full_layout

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
LAYOUTS = shared_data_dir().parent / "fixtures" / "mmdet" / "layouts"
#: layouts of the small-golden families (absolute paths: ``LAYOUTS / path`` is the path itself)
GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ("faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py", "faster_rcnn_r50.json"),
        ("retinanet/retinanet_r50_fpn_1x_coco.py", "retinanet_r50.json"),
        ("ssd/ssdlite_mobilenetv2_scratch_600e_coco.py", "ssdlite_mobilenetv2.json"),
        ("yolo/yolov3_mobilenetv2_320_300e_coco.py", "yolov3_mobilenetv2_320.json"),
        ("fsaf/fsaf_r50_fpn_1x_coco.py", GOLDENS / "fsaf" / "layout.json"),
        ("ddod/ddod_r50_fpn_1x_coco.py", GOLDENS / "ddod" / "layout.json"),
        ("sabl/sabl_retinanet_r50_fpn_1x_coco.py", GOLDENS / "sabl" / "layout.json"),
        (
            "guided_anchoring/ga_retinanet_r50_fpn_1x_coco.py",
            GOLDENS / "guided_anchoring" / "layout.json",
        ),
        ("guided_anchoring/ga_faster_r50_fpn_1x_coco.py", GOLDENS / "ga_faster" / "layout.json"),
        (
            "nas_fcos/nas_fcos_nashead_r50_caffe_fpn_gn-head_4x4_1x_coco.py",
            GOLDENS / "nas_fcos" / "layout.json",
        ),
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
    assert_full_layout(CONFIGS / config, json.loads(path.read_text()))
