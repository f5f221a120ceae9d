"""Golden fixture of the ``DyHead`` neck (tests/data/goldens/dyhead/), made with MMDetection 3.3
(mmcv 2.1's compiled modulated deformable conv on CPU).

usage (repository root): /work/peers/venv/bin/python tools/goldens/dyhead.py
Three levels of 15x19, 8x10 and 4x5 (not exact halves), random offsets (zero_init_offset=False
and random weights), two blocks. The full-size layout is ATSS R-50 with neck=[FPN, DyHead].
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golden_io import full_layouts, run_small, setup

setup()
import torch  # noqa: E402

SMALL = dict(type="DyHead", in_channels=16, out_channels=16, num_blocks=2, zero_init_offset=False)
feats = [torch.rand(1, 16, 15, 19), torch.rand(1, 16, 8, 10), torch.rand(1, 16, 4, 5)]
LAYOUTS = full_layouts(
    {
        "atss_r50_fpn_dyhead": (
            "dyhead/atss_r50_fpn_dyhead_1x_coco.py",
            "dyhead/atss_r50_fpn_dyhead_1x_coco.py",
        ),
    }
)
run_small("dyhead", SMALL, SMALL, feats, LAYOUTS)
