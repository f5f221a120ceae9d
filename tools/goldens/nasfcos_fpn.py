"""Golden fixture for NASFCOS_FPN: tests/data/goldens/nasfcos_fpn/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/nasfcos_fpn.py

The full-size layout is the v2 config's (input convs of the cells are DCNv2); the small
instance uses plain convs (mmcv 2.1.0 has no CPU deformable conv; detforge's DCNv2 has its
own golden tests) and odd level sizes.
"""

from __future__ import annotations

from neck_common import dump_layout, feature_maps, save_case, seed_all

# configs/nas_fcos/nas_fcos_nashead_r50_caffe_fpn_gn-head_4x4_1x_coco.py (v2.28.2)
FULL = dict(
    type="NASFCOS_FPN",
    in_channels=[256, 512, 1024, 2048],
    out_channels=256,
    start_level=1,
    add_extra_convs=True,
    num_outs=5,
    norm_cfg=dict(type="BN"),
    conv_cfg=dict(type="DCNv2", deform_groups=2),
)
CHANNELS = [4, 8, 12, 16]
SIZES = [(34, 30), (17, 15), (9, 8), (5, 4)]


def main() -> None:
    seed_all(0)
    dump_layout("nasfcos_fpn", FULL)
    small = dict(FULL, in_channels=CHANNELS, out_channels=8, conv_cfg=None)
    save_case("nasfcos_fpn", small, feature_maps(CHANNELS, SIZES, seed=0), seed=1)


if __name__ == "__main__":
    main()
