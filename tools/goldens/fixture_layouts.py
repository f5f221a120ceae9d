"""Write tests/data/goldens/fixture_layouts.json: for each full-size layout of the shared
MMDetection fixtures (``fixtures/mmdet/layouts``) whose backbone/neck this issue built, the
v2.28.2 config it corresponds to and that config's backbone and neck dicts.

usage (from the repository root): /work/peers/venv/bin/python tools/goldens/fixture_layouts.py
"""

from __future__ import annotations

import json

from common import GOLDENS, v2_parts

V2_CONFIGS = {
    "yolox_tiny": "yolox/yolox_tiny_8x8_300e_coco.py",
    "ssdlite_mobilenetv2": "ssd/ssdlite_mobilenetv2_scratch_600e_coco.py",
    "yolov3_mobilenetv2_320": "yolo/yolov3_mobilenetv2_320_300e_coco.py",
    "centernet_r18_dcnv2": "centernet/centernet_resnet18_dcnv2_140e_coco.py",
}

data = {
    name: {"v2_config": "configs/" + path, "v2_parts": v2_parts(path)}
    for name, path in V2_CONFIGS.items()
}
GOLDENS.mkdir(parents=True, exist_ok=True)
(GOLDENS / "fixture_layouts.json").write_text(json.dumps(data, indent=1) + "\n")
print(sorted(data))
