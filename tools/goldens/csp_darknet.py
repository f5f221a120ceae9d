"""Golden fixture of CSPDarknet P6 + YOLOXPAFPN, both depthwise (tests/data/goldens/csp_darknet).

(P5 without depthwise convs is covered by the shared yolox fixture.) Small instance:
``arch='P6'``, deepen 0.33, widen 0.0625 (stages 8/16/32/48/64), ``use_depthwise=True``, SPP
kernels (3, 5), four outputs into a 4-level depthwise YOLOXPAFPN with 16 channels; random
weights; input 1x3x64x64. Layout: YOLOX-nano (depthwise). See common.py.
"""

from common import dump_layout, make_golden, write_readme

meta = make_golden(
    "csp_darknet",
    {
        "backbone": dict(
            type="CSPDarknet",
            arch="P6",
            deepen_factor=0.33,
            widen_factor=0.0625,
            out_indices=[2, 3, 4, 5],
            use_depthwise=True,
            spp_kernal_sizes=[3, 5],
        ),
        "neck": dict(
            type="YOLOXPAFPN",
            in_channels=[16, 32, 48, 64],
            out_channels=16,
            num_csp_blocks=1,
            use_depthwise=True,
        ),
    },
    (1, 3, 64, 64),
)
layout = dump_layout(
    "csp_darknet",
    "layout_yolox_nano.json",
    "yolox/yolox_nano_8xb8-300e_coco.py",
    "yolox/yolox_nano_8x8_300e_coco.py",
)
write_readme(
    "csp_darknet",
    "CSPDarknet (P6, depthwise) + YOLOXPAFPN (depthwise)",
    meta,
    [layout],
    (
        "No difference in keys or numerics with the v2 arguments: 3.3's `CSPLayer` adds "
        "`channel_attention` and `use_cspnext_block` (both off by default, not in v2), and its "
        "`SPPBottleneck` turns CUDA autocast off around the pooling (no effect in float32)."
    ),
)
