"""Golden fixture for BFP and NonLocal2d: tests/data/goldens/bfp/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/bfp.py

BFP as Libra R-CNN uses it (non-local refinement), BFP with a conv refinement, and mmcv's
NonLocal2d in every mode (with and without sub-sampling, with a norm on conv_out).
"""

from __future__ import annotations

import torch
from mmcv.cnn import NonLocal2d
from neck_common import dump_layout, feature_maps, save_case, seed_all

# configs/libra_rcnn/libra_faster_rcnn_r50_fpn_1x_coco.py (v2.28.2), the neck after FPN
FULL = dict(type="BFP", in_channels=256, num_levels=5, refine_level=2, refine_type="non_local")
SIZES = [(20, 13), (10, 7), (5, 4), (3, 2), (2, 1)]
NON_LOCAL = {
    "embedded_gaussian": dict(in_channels=8, reduction=2, use_scale=True),
    "gaussian": dict(in_channels=8, sub_sample=True, mode="gaussian"),
    "dot_product": dict(in_channels=8, reduction=4, mode="dot_product", norm_cfg=dict(type="BN")),
    "concatenation": dict(in_channels=8, sub_sample=True, mode="concatenation"),
}


def main() -> None:
    seed_all(0)
    dump_layout("bfp", FULL)
    small = dict(FULL, in_channels=8)
    save_case("bfp", small, feature_maps([8] * 5, SIZES, seed=0), seed=1)
    conv = dict(
        FULL,
        in_channels=8,
        num_levels=4,
        refine_level=1,
        refine_type="conv",
        norm_cfg=dict(type="BN"),
    )
    save_case("bfp", conv, feature_maps([8] * 4, SIZES[:4], seed=2), seed=3, case="conv")
    g = torch.Generator().manual_seed(4)
    for i, (mode, kwargs) in enumerate(NON_LOCAL.items()):
        module = NonLocal2d(**kwargs)
        x = torch.randn((2, 8, 6, 5), generator=g)
        save_case(
            "bfp",
            dict(type="NonLocal2d", **kwargs),
            x,
            seed=10 + i,
            case=f"nonlocal_{mode}",
            module=module,
        )


if __name__ == "__main__":
    main()
