"""Golden fixture for ChannelMapper: tests/data/goldens/channel_mapper/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/channel_mapper.py
"""

from __future__ import annotations

from neck_common import dump_layout, feature_maps, save_case, seed_all

# configs/deformable_detr/deformable_detr_r50_16x2_50e_coco.py (v2.28.2)
FULL = dict(
    type="ChannelMapper",
    in_channels=[512, 1024, 2048],
    kernel_size=1,
    out_channels=256,
    act_cfg=None,
    norm_cfg=dict(type="GN", num_groups=32),
    num_outs=4,
)


def main() -> None:
    seed_all(0)
    dump_layout("channel_mapper", FULL)
    gn2 = dict(type="GN", num_groups=2)
    small = dict(FULL, in_channels=[4, 8, 12], out_channels=8, norm_cfg=gn2)
    save_case("channel_mapper", small, feature_maps([4, 8, 12], [(12, 10), (6, 5), (3, 3)], 0), 1)
    relu = dict(type="ChannelMapper", in_channels=[4, 8], out_channels=8, num_outs=4)
    save_case(
        "channel_mapper",
        relu,
        feature_maps([4, 8], [(8, 6), (4, 3)], seed=2),
        seed=3,
        case="relu",
        notes="defaults: 3x3 convs with ReLU, two extra levels",
    )


if __name__ == "__main__":
    main()
