"""Golden fixture of Darknet-53 + YOLOV3Neck (tests/data/goldens/darknet); see common.py.

Darknet-53's widths are fixed, so the small instance is the full network (and YOLOv3's full
neck) with the formula weights of weights.py (nothing stored but the input and the outputs),
on a 1x3x64x64 input. Layout: YOLOv3 D53 320.
"""

from common import dump_layout, make_golden, write_readme

meta = make_golden(
    "darknet",
    {
        "backbone": dict(type="Darknet", depth=53, out_indices=[3, 4, 5]),
        "neck": dict(
            type="YOLOV3Neck",
            num_scales=3,
            in_channels=[1024, 512, 256],
            out_channels=[512, 256, 128],
        ),
    },
    (1, 3, 64, 64),
    weights="formula",
)
layout = dump_layout(
    "darknet",
    "layout_yolov3_d53.json",
    "yolo/yolov3_d53_8xb8-320-273e_coco.py",
    "yolo/yolov3_d53_320_273e_coco.py",
)
write_readme(
    "darknet",
    "Darknet-53 + YOLOV3Neck (YOLOv3)",
    meta,
    [layout],
    "No difference in keys or numerics (3.3 only adds type hints).",
)
