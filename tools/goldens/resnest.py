"""Golden fixture of ResNeSt from MMDetection 3.3 (see _common.py; peer venv, repo root).

Small instances: ResNeSt-50 with stem_channels=8, base_channels=4 and (a) radix 2, groups 2,
base_width 2 (softmax over the radix within cardinal groups), (b) 3 stages, radix 1 (sigmoid
attention) without avg_down_stride; 1x3x64x64 input. Full-size layout: ResNeSt-50 of
configs/resnest/faster_rcnn_s50_fpn_syncbn-backbone+head_mstrain-range_1x_coco.py (SyncBN).
"""

from __future__ import annotations

from _common import instances, layout, write
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

register_all_modules()

SMALL = {
    "radix2_groups2": dict(
        type="ResNeSt",
        depth=50,
        stem_channels=8,
        base_channels=4,
        radix=2,
        groups=2,
        base_width=2,
        reduction_factor=4,
        avg_down_stride=True,
        init_cfg=None,
    ),
    "radix1_no_avd": dict(
        type="ResNeSt",
        depth=50,
        stem_channels=8,
        base_channels=4,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(0, 1, 2),
        radix=1,
        reduction_factor=2,
        avg_down_stride=False,
        init_cfg=None,
    ),
}
FULL = dict(
    type="ResNeSt",
    stem_channels=64,
    depth=50,
    radix=2,
    reduction_factor=4,
    avg_down_stride=True,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type="SyncBN", requires_grad=True),
    norm_eval=False,
    style="pytorch",
)


def main() -> None:
    weights, inputs, expected = instances(MODELS.build, SMALL)
    write("resnest", weights, inputs, expected, layout(MODELS.build(dict(FULL)), FULL))


if __name__ == "__main__":
    main()
