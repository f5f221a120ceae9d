"""Golden: the backbones and necks of MMDetection's one-stage fixtures reproduce ``neck``.

``../shared/fixtures/mmdet/{yolox,ssd,yolov3,centernet}`` hold tiny trained models: CSPDarknet +
YOLOXPAFPN, MobileNetV2 + SSDNeck (depthwise, SSDLite), MobileNetV2 + YOLOV3Neck and ResNet-18 +
CTResNetNeck (DCNv2). Their ``backbone.*`` / ``neck.*`` weights are loaded strictly and the
features of ``inputs.pt``'s first image are compared with MMDetection's ``extract_feat``. The
full-size layouts (``layouts/*.json``) are compared with the v2.28.2 configs' backbone and neck
(``tests/data/goldens/fixture_layouts.json`` holds those dicts).
Observed max abs difference (first image): 1.7e-5 (centernet, DCNv2), under 5e-6 for the others.
"""

from __future__ import annotations

import pytest
import torch

from detforge.config import Config
from tests.conftest import shared_data_dir
from tests.models.component_golden import (
    GOLDENS,
    assert_layout,
    assert_maps_close,
    build_layout_parts,
    build_part,
    read_json,
    strip,
)

FIXTURES = shared_data_dir().parent / "fixtures" / "mmdet"
# MMDetection 3.3 renamed CTResNetNeck's ``in_channel`` (v2) to ``in_channels``; model.py is 3.3's
V3_TO_V2_KEYS = {"CTResNetNeck": {"in_channels": "in_channel"}}


def _v2_part(cfg: dict) -> dict:
    renames = V3_TO_V2_KEYS.get(cfg["type"], {})
    return {renames.get(k, k): v for k, v in cfg.items()}


@pytest.mark.parametrize("family", ["yolox", "ssd", "yolov3", "centernet"])
def test_backbone_and_neck_match_mmdetection(family: str) -> None:
    folder = FIXTURES / family
    if not (folder / "weights.pth").is_file():
        pytest.skip(f"MMDetection fixture not found: {folder}")
    cfg = Config.fromfile(str(folder / "model.py"))
    backbone = build_part(_v2_part(dict(cfg.model.backbone)), "backbone")
    neck = build_part(_v2_part(dict(cfg.model.neck)), "neck")
    weights = torch.load(folder / "weights.pth", weights_only=True)["state_dict"]
    backbone.load_state_dict(strip(weights, "backbone."), strict=True)
    neck.load_state_dict(strip(weights, "neck."), strict=True)
    # the first image only (eval mode: each image's maps are independent of the other's)
    img = torch.load(folder / "inputs.pt", weights_only=False)["img"][:1]  # trusted, holds numpy
    expected = [m[:1] for m in torch.load(folder / "expected.pt", weights_only=True)["neck"]]
    backbone.eval()
    neck.eval()
    with torch.no_grad():
        feats = neck(backbone(img))
    assert_maps_close(list(feats), expected, family)


@pytest.mark.parametrize(
    "layout_name",
    ["yolox_tiny", "ssdlite_mobilenetv2", "yolov3_mobilenetv2_320", "centernet_r18_dcnv2"],
)
def test_full_size_layouts(layout_name: str) -> None:
    path = FIXTURES / "layouts" / f"{layout_name}.json"
    if not path.is_file():
        pytest.skip(f"layout fixture not found: {path}")
    layout = read_json(path) | read_json(GOLDENS / "fixture_layouts.json")[layout_name]
    assert_layout(build_layout_parts(layout), layout)
