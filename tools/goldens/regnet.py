"""Golden fixture of RegNet from MMDetection 3.3 (see _common.py; peer venv, repo root).

Small instances: arch dict(w0=8, wa=8.0, wm=1.5, group_w=8, depth=6) -> stage widths 8/16/24/40
with 1/2/3/5 groups, and the same with bot_mul=0.75 (v2's width/group adjustment at work);
1x3x64x64 input. Full-size layout: RegNetX-3.2GF of
configs/regnet/mask_rcnn_regnetx-3.2GF_fpn_1x_coco.py, plus the stage plan and parameter count of
every named arch (stage widths, blocks, group widths, grouped-conv widths).
"""

from __future__ import annotations

from _common import instances, layout, write
from mmdet.models.backbones import RegNet
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

register_all_modules()

SMALL = {
    "x": dict(
        type="RegNet",
        arch=dict(w0=8, wa=8.0, wm=1.5, group_w=8, depth=6, bot_mul=1.0),
        stem_channels=8,
        init_cfg=None,
    ),
    "bot_mul_075": dict(
        type="RegNet",
        arch=dict(w0=8, wa=8.0, wm=1.5, group_w=8, depth=6, bot_mul=0.75),
        stem_channels=8,
        init_cfg=None,
    ),
}
FULL = dict(
    type="RegNet",
    arch="regnetx_3.2gf",
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type="BN", requires_grad=True),
    norm_eval=True,
    style="pytorch",
)


def main() -> None:
    weights, inputs, expected = instances(MODELS.build, SMALL)
    archs = {}
    for arch in RegNet.arch_settings:
        net = MODELS.build(dict(type="RegNet", arch=arch))
        archs[arch] = dict(
            stage_widths=list(net.stage_widths),
            stage_blocks=list(net.stage_blocks),
            group_widths=list(net.group_widths),
            conv2_widths=[
                getattr(net, f"layer{i + 1}")[0].conv2.out_channels
                for i in range(len(net.stage_blocks))
            ],
        )
    write("regnet", weights, inputs, expected, layout(MODELS.build(dict(FULL)), FULL, archs=archs))


if __name__ == "__main__":
    main()
