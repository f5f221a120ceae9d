"""Golden fixture for FPG: tests/data/goldens/fpg/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/fpg.py

Two small grids: the v2 configs' bottom-up grid (max-pooled extra level, skips), and one with
extra conv levels, a top-down pathway (same_down, across_up transitions) and a skipped middle
level in it.
"""

from __future__ import annotations

import copy

from neck_common import dump_layout, feature_maps, save_case, seed_all

BN = dict(type="BN", requires_grad=True)
ACT_FIRST = dict(norm_cfg=BN, inplace=False, order=("act", "conv", "norm"))
# configs/fpg/faster_rcnn_r50_fpg_crop640_50e_coco.py (v2.28.2)
FULL = dict(
    type="FPG",
    in_channels=[256, 512, 1024, 2048],
    out_channels=256,
    inter_channels=256,
    num_outs=5,
    stack_times=9,
    paths=["bu"] * 9,
    same_down_trans=None,
    same_up_trans=dict(type="conv", kernel_size=3, stride=2, padding=1, **ACT_FIRST),
    across_lateral_trans=dict(type="conv", kernel_size=1, **ACT_FIRST),
    across_down_trans=dict(type="interpolation_conv", mode="nearest", kernel_size=3, **ACT_FIRST),
    across_up_trans=None,
    across_skip_trans=dict(type="conv", kernel_size=1, **ACT_FIRST),
    output_trans=dict(
        type="last_conv", kernel_size=3, order=("act", "conv", "norm"), inplace=False
    ),
    norm_cfg=BN,
    skip_inds=[(0, 1, 2, 3), (0, 1, 2), (0, 1), (0,), ()],
)
# configs/fpg/retinanet_r50_fpg_crop640_50e_coco.py: extra conv levels from C3
FULL_RETINA = dict(copy.deepcopy(FULL), add_extra_convs=True, start_level=1)
CHANNELS = [4, 8, 12, 16]


def main() -> None:
    seed_all(0)
    dump_layout("fpg", FULL)
    dump_layout("fpg", FULL_RETINA, "layout_retinanet.json")
    small = dict(
        copy.deepcopy(FULL),
        in_channels=CHANNELS,
        out_channels=8,
        inter_channels=8,
        stack_times=3,
        paths=["bu"] * 3,
        skip_inds=[(0, 1, 2), (0, 1), (0,), (), ()],
    )
    inputs = feature_maps(CHANNELS, [(32, 48), (16, 24), (8, 12), (4, 6)], seed=0)
    save_case("fpg", small, inputs, seed=1)
    td = dict(
        copy.deepcopy(small),
        add_extra_convs=True,
        start_level=1,
        paths=["bu", "td", "bu"],
        same_down_trans=dict(type="interpolation_conv", kernel_size=3, **ACT_FIRST),
        across_up_trans=dict(type="conv", kernel_size=3, stride=2, padding=1, **ACT_FIRST),
        skip_inds=[(0,), (), (1,), (), ()],
    )
    inputs = feature_maps(CHANNELS, [(32, 32), (16, 16), (8, 8), (4, 4)], seed=2)
    save_case("fpg", td, inputs, seed=3, case="td", notes="bu/td/bu, extra convs, skips")


if __name__ == "__main__":
    main()
