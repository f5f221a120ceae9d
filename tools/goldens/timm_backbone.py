"""Golden fixture of ``TIMMBackbone`` (``mmcls.TIMMBackbone`` in v2 configs;
tests/data/goldens/timm_backbone/), made with MMDetection 3.3, MMPretrain 1.x's
``mmpretrain.TIMMBackbone`` (mmcls's successor, same wrapper) and timm (the version is in
layout.json; detforge's test needs the same timm).

usage (repository root): /work/peers/venv/bin/python tools/goldens/timm_backbone.py
The small instance is timm's resnet18 at 1/8 width (stem_width, channels: timm arguments passed
through) as a feature pyramid (levels 1-4) with random weights;
the full-size layout is RetinaNet with timm's tv_resnet50 (built without its ImageNet weights).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golden_io import full_layouts, run_small, setup

setup()
import mmpretrain.models  # noqa: E402, F401  (registers mmpretrain.TIMMBackbone)
import torch  # noqa: E402

ARGS = dict(
    model_name="resnet18",
    features_only=True,
    out_indices=(1, 2, 3, 4),
    stem_width=8,
    channels=(8, 16, 32, 64),
)


def no_download(model_cfg: dict) -> None:
    model_cfg["backbone"]["pretrained"] = False


LAYOUTS = full_layouts(
    {
        "retinanet_timm_tv_resnet50": (
            "timm_example/retinanet_timm_tv_resnet50_fpn_1x_coco.py",
            "timm_example/retinanet_timm-tv-resnet50_fpn_1x_coco.py",
        ),
    },
    prepare=no_download,
)
run_small(
    "timm_backbone",
    dict(type="mmpretrain.TIMMBackbone", **ARGS),
    dict(type="mmcls.TIMMBackbone", **ARGS),
    torch.rand(1, 3, 64, 80),
    LAYOUTS,
)
