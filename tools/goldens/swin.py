"""Golden fixture of ``SwinTransformer`` (tests/data/goldens/swin/), made with MMDetection 3.3.

usage (repository root): /work/peers/venv/bin/python tools/goldens/swin.py
The small instance has odd token maps (padding to the window, shifted-window masks). It has no
absolute position embedding: MMDetection 3.3 stores it as [1, h*w, C] and adds it without
resizing, v2 as [1, C, h, w] resized bicubically to the token map (detforge follows v2; that
path is tested against its definition in tests/models/backbones/test_swin.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golden_io import full_layouts, run_small, setup

setup()
import torch  # noqa: E402

SMALL = dict(
    type="SwinTransformer",
    embed_dims=16,
    depths=(2, 2, 2),
    num_heads=(1, 2, 4),
    strides=(4, 2, 2),
    window_size=3,
    mlp_ratio=2,
    out_indices=(0, 1, 2),
    drop_path_rate=0.0,
)
LAYOUTS = full_layouts(
    {
        "mask_rcnn_swin_t": (
            "swin/mask_rcnn_swin-t-p4-w7_fpn_1x_coco.py",
            "swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py",
        ),
        "retinanet_swin_t": (
            "swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py",
            "swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py",
        ),
    }
)
run_small("swin", SMALL, SMALL, torch.rand(1, 3, 50, 66), LAYOUTS)
