"""Golden fixture of Res2Net from MMDetection 3.3 (see _common.py; peer venv, repo root).

Small instances: Res2Net-50 with base_channels=4, stem_channels=8, scales=4, base_width=2 (splits
of 2..16 channels); 3 stages with scales=3, a dilated stage and style/avg_down values that v2
ignores; 1x3x64x64 input. Full-size layout: Res2Net-101 26w×4s of
configs/res2net/faster_rcnn_r2_101_fpn_2x_coco.py (merged with its r50 base).
"""

from __future__ import annotations

from _common import instances, layout, write
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

register_all_modules()

SMALL = {
    "r2_50": dict(
        type="Res2Net",
        depth=50,
        base_channels=4,
        stem_channels=8,
        scales=4,
        base_width=2,
        init_cfg=None,
    ),
    "r2_50_s3_caffe_ignored": dict(  # style/deep_stem/avg_down are overridden, as in v2
        type="Res2Net",
        depth=50,
        base_channels=4,
        stem_channels=8,
        scales=3,
        base_width=3,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 2),
        out_indices=(1, 2),
        style="caffe",
        avg_down=False,
        init_cfg=None,
    ),
}
FULL = dict(
    type="Res2Net",
    depth=101,
    scales=4,
    base_width=26,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type="BN", requires_grad=True),
    norm_eval=True,
    style="pytorch",
)


def main() -> None:
    weights, inputs, expected = instances(MODELS.build, SMALL)
    write("res2net", weights, inputs, expected, layout(MODELS.build(dict(FULL)), FULL))


if __name__ == "__main__":
    main()
