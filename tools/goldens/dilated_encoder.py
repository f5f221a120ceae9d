"""Golden fixture of DilatedEncoder (tests/data/goldens/dilated_encoder); see common.py.

Small instance: 32 -> 16 channels, 4 residual blocks (mid 8, dilations 2/4/6/8), random
weights, one 1x32x12x12 map. Layout: YOLOF R50-C5.
"""

from common import dump_layout, make_golden, write_readme

meta = make_golden(
    "dilated_encoder",
    {
        "neck": dict(
            type="DilatedEncoder",
            in_channels=32,
            out_channels=16,
            block_mid_channels=8,
            num_residual_blocks=4,
            block_dilations=[2, 4, 6, 8],
        )
    },
    (1, 32, 12, 12),
)
layout = dump_layout(
    "dilated_encoder",
    "layout_yolof_r50_c5.json",
    "yolof/yolof_r50-c5_8xb8-1x_coco.py",
    "yolof/yolof_r50_c5_8x8_1x_coco.py",
)
write_readme(
    "dilated_encoder",
    "DilatedEncoder (YOLOF)",
    meta,
    [layout],
    "No difference in keys or numerics.",
)
