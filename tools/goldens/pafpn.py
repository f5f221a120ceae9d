"""Golden fixture for PAFPN: tests/data/goldens/pafpn/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/pafpn.py
"""

from __future__ import annotations

from neck_common import dump_layout, feature_maps, save_case, seed_all

# configs/pafpn/faster_rcnn_r50_pafpn_1x_coco.py (v2.28.2)
FULL = dict(type="PAFPN", in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)
CHANNELS = [4, 8, 12, 16]
SIZES = [(23, 17), (12, 9), (6, 5), (3, 3)]  # odd sizes, as stride-2 convs produce them


def main() -> None:
    seed_all(0)
    dump_layout("pafpn", FULL)
    inputs = feature_maps(CHANNELS, SIZES, seed=0)
    save_case(
        "pafpn",
        dict(type="PAFPN", in_channels=CHANNELS, out_channels=8, num_outs=5),
        inputs,
        seed=1,
        notes="max-pooled extra level",
    )
    save_case(
        "pafpn",
        dict(
            type="PAFPN",
            in_channels=CHANNELS,
            out_channels=8,
            num_outs=6,
            start_level=1,
            add_extra_convs="on_output",
            relu_before_extra_convs=True,
            norm_cfg=dict(type="BN"),
            act_cfg=dict(type="ReLU"),
        ),
        inputs,
        seed=2,
        case="extra_convs",
        notes="start_level 1, three extra conv levels on the outputs, BN + ReLU",
    )


if __name__ == "__main__":
    main()
