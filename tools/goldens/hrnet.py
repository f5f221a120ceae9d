"""Golden fixture of HRNet + HRFPN from MMDetection 3.3 (see _common.py; peer venv, repo root).

Small instance: narrow branches (4/8/16/32 channels), one or two blocks, two HRModules in
stages 3 and 4 (module chaining), HRFPN to 8 channels and 5 levels; 1x3x64x64 input.
Full-size layout: HRNetV2p-W32 + HRFPN(256) of configs/hrnet/faster_rcnn_hrnetv2p_w32_1x_coco.py,
plus parameter counts of W18 / W32 / W40.
"""

from __future__ import annotations

import copy

import torch
from _common import count_params, layout, randomize, run, seed_all, write
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

register_all_modules()


def extra(channels: tuple[int, ...], blocks: int, modules: tuple[int, int, int, int], c1: int):
    def stage(n: int, block: str, m: int) -> dict:
        return dict(
            num_modules=m,
            num_branches=n,
            block=block,
            num_blocks=(blocks,) * n,
            num_channels=channels[:n],
        )

    s1 = dict(
        num_modules=modules[0],
        num_branches=1,
        block="BOTTLENECK",
        num_blocks=(blocks,),
        num_channels=(c1,),
    )
    return dict(
        stage1=s1,
        stage2=stage(2, "BASIC", modules[1]),
        stage3=stage(3, "BASIC", modules[2]),
        stage4=stage(4, "BASIC", modules[3]),
    )


SMALL = dict(
    backbone=dict(type="HRNet", extra=extra((4, 8, 16, 32), 1, (1, 1, 2, 2), 8), init_cfg=None),
    neck=dict(type="HRFPN", in_channels=[4, 8, 16, 32], out_channels=8, num_outs=5),
)
SMALL_MAX = dict(  # single-output last module, max pooling, stride-2 output convs
    backbone=dict(
        type="HRNet",
        extra=extra((4, 8, 16, 32), 2, (1, 1, 1, 2), 4),
        multiscale_output=False,
        init_cfg=None,
    ),
    neck=dict(
        type="HRFPN", in_channels=[4], out_channels=8, num_outs=3, pooling_type="MAX", stride=2
    ),
)
W32 = extra((32, 64, 128, 256), 4, (1, 1, 4, 3), 64)
FULL = dict(
    backbone=dict(type="HRNet", extra=W32),
    neck=dict(type="HRFPN", in_channels=[32, 64, 128, 256], out_channels=256),
)


def main() -> None:
    weights, inputs, expected = {}, {}, {}
    for i, (name, cfg) in enumerate((("small", SMALL), ("single_output_max", SMALL_MAX))):
        seed_all(i)
        model = torch.nn.Sequential(MODELS.build(cfg["backbone"]), MODELS.build(cfg["neck"]))
        randomize(model, seed=100 + i)
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(200 + i))
        feats = run(model[0], x)
        weights[name] = {k: v.clone() for k, v in model.state_dict().items()}
        inputs[name] = x
        expected[name] = {"backbone": feats, "neck": run(model[1], feats)}
        expected[name]["config"] = cfg

    full = torch.nn.Module()
    full.backbone = MODELS.build(copy.deepcopy(FULL["backbone"]))
    full.neck = MODELS.build(copy.deepcopy(FULL["neck"]))
    counts = {}
    for width in (18, 32, 40):
        e = extra((width, 2 * width, 4 * width, 8 * width), 4, (1, 1, 4, 3), 64)
        counts[f"w{width}"] = count_params(lambda e=e: MODELS.build(dict(type="HRNet", extra=e)))
    write(
        "hrnet",
        weights,
        inputs,
        expected,
        layout(full, FULL, backbone_counts={k: list(v) for k, v in counts.items()}),
    )


if __name__ == "__main__":
    main()
