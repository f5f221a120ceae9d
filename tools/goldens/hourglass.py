"""Golden fixture of HourglassNet (tests/data/goldens/hourglass); see common.py.

Small instance: two stacks of depth-2 hourglasses (channels 8/8/16), random weights, 1x3x64x64.
Layout: CornerNet's Hourglass-104 (the backbone of cornernet and centripetalnet).
"""

from common import dump_layout, make_golden, write_readme

meta = make_golden(
    "hourglass",
    {
        "backbone": dict(
            type="HourglassNet",
            downsample_times=2,
            num_stacks=2,
            stage_channels=[8, 8, 16],
            stage_blocks=[1, 1, 2],
            feat_channel=8,
        )
    },
    (1, 3, 64, 64),
)
layout = dump_layout(
    "hourglass",
    "layout_cornernet_hourglass104.json",
    "cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py",
    "cornernet/cornernet_hourglass104_mstest_10x5_210e_coco.py",
)
write_readme(
    "hourglass",
    "HourglassNet (CornerNet / CentripetalNet backbone)",
    meta,
    [layout],
    (
        "No difference in keys or numerics. MMDetection 3.3's `HourglassNet` has no `pretrained` "
        "argument (v2 accepts and ignores it; detforge warns that it is ignored) and orders "
        "`HourglassModule`'s arguments differently; both versions build the nested hourglass "
        "levels with the default `norm_cfg`/`upsample_cfg` (not the network's), which detforge "
        "keeps."
    ),
)
