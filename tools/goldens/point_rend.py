"""Golden of PointRend (``point_rend_r50_caffe_fpn_mstrain_1x_coco.py`` at tiny widths) from
MMDetection 3.3.

Tiny model: ``_zoo3_roi.tiny_two_stage`` widths, CoarseMaskHead fcs 32, MaskPointHead at 16
channels; ``test_cfg.rcnn.max_per_img=20``. The training losses sample random points
(``torch.rand``): they are computed right after ``torch.manual_seed(0)``.

Run: /work/peers/venv/bin/python tools/goldens/point_rend.py   (from the repo root)
"""

from __future__ import annotations

import _zoo3_roi as z

HEADER = """# Tiny PointRend golden (tests/data/goldens/point_rend), MMDetection v2 syntax:
# configs/point_rend/point_rend_r50_caffe_fpn_mstrain_1x_coco.py with a pytorch-style R-18
# (8 base channels), 16-channel FPN/RPN/RoI features, box and coarse-mask fcs 32, point head
# 16 channels, take-all samplers, test_cfg.rcnn.max_per_img=20. Made by
# tools/goldens/point_rend.py.
"""


def model() -> dict:
    m = z.tiny_two_stage(z.v2_model("point_rend/point_rend_r50_caffe_fpn_mstrain_1x_coco.py"))
    m["roi_head"]["mask_head"]["fc_out_channels"] = 32
    m["roi_head"]["point_head"].update(in_channels=z.WIDTH, fc_channels=z.WIDTH)
    m["test_cfg"]["rcnn"]["max_per_img"] = 20
    return m


if __name__ == "__main__":
    z.write(
        "point_rend",
        HEADER,
        model(),
        "point_rend/point-rend_r50-caffe_fpn_ms-1x_coco.py",
        with_seg=False,
    )
