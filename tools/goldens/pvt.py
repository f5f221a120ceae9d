"""Golden fixtures of ``PyramidVisionTransformer`` (v1) and ``PyramidVisionTransformerV2``
(tests/data/goldens/pvt/ and pvtv2/), made with MMDetection 3.3.

usage (repository root): /work/peers/venv/bin/python tools/goldens/pvt.py
v1: a 64x80 input against a 64x64 pre-training size (position embeddings resized bilinearly);
v2: a 61x77 input (overlapping patch embeddings on odd sizes).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golden_io import full_layouts, run_small, setup

setup()
import torch  # noqa: E402

V1 = dict(
    type="PyramidVisionTransformer",
    pretrain_img_size=64,
    embed_dims=8,
    num_layers=[1, 2, 1, 1],
    drop_path_rate=0.0,
)
V2 = dict(
    type="PyramidVisionTransformerV2", embed_dims=8, num_layers=[1, 2, 1, 1], drop_path_rate=0.0
)
run_small(
    "pvt",
    V1,
    V1,
    torch.rand(1, 3, 64, 80),
    full_layouts(
        {
            "retinanet_pvt_t": (
                "pvt/retinanet_pvt-t_fpn_1x_coco.py",
                "pvt/retinanet_pvt-t_fpn_1x_coco.py",
            )
        }
    ),
)
run_small(
    "pvtv2",
    V2,
    V2,
    torch.rand(1, 3, 61, 77),
    full_layouts(
        {
            "retinanet_pvtv2_b0": (
                "pvt/retinanet_pvtv2-b0_fpn_1x_coco.py",
                "pvt/retinanet_pvtv2-b0_fpn_1x_coco.py",
            ),
        }
    ),
)
