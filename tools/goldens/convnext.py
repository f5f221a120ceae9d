"""Golden fixture of ``ConvNeXt`` (``mmcls.ConvNeXt`` in v2 configs; tests/data/goldens/convnext/),
made with MMDetection 3.3 and MMPretrain 1.x (``mmpretrain.ConvNeXt``, mmcls's successor, same
keys; install it into the peer venv with ``pip install --no-deps mmpretrain`` plus its small
dependencies).

usage (repository root): /work/peers/venv/bin/python tools/goldens/convnext.py
MMPretrain builds the LayerNorm of the downsampling layers from norm_cfg (eps 1e-6); mmcls 0.25,
which v2's configs use, builds LayerNorm2d with its default eps 1e-5: the peer's are set to 1e-5.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golden_io import full_layouts, run_small, setup

setup()
import mmpretrain.models  # noqa: E402, F401  (registers mmpretrain.ConvNeXt)
import torch  # noqa: E402

ARGS = dict(
    arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32]),
    out_indices=[0, 1, 2, 3],
    drop_path_rate=0.4,
    layer_scale_init_value=1.0,
    gap_before_final_norm=False,
)


def mmcls_downsample_eps(module: torch.nn.Module) -> None:
    for layer in list(module.downsample_layers)[1:]:
        layer[0].eps = 1e-5


LAYOUTS = full_layouts(
    {
        "mask_rcnn_convnext_t": (
            "convnext/mask_rcnn_convnext-t_p4_w7_fpn_fp16_ms-crop_3x_coco.py",
            "convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py",
        ),
    }
)
run_small(
    "convnext",
    dict(type="mmpretrain.ConvNeXt", **ARGS),
    dict(type="mmcls.ConvNeXt", **ARGS),
    torch.rand(1, 3, 64, 80),
    LAYOUTS,
    notes="downsample_layers.{1,2,3}.0.eps set to 1e-5 (mmcls 0.25's LayerNorm2d default)",
    adjust=mmcls_downsample_eps,
)
