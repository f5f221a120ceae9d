"""Golden fixture for NASFPN and RetinaSepBNHead: tests/data/goldens/nas_fpn/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/nas_fpn.py

The small neck has odd level sizes (17x15, 9x8, 5x4, 2x2, 1x1), so the merge cells pad before
max pooling and meet the lexicographic size comparison; the head runs on the neck's output.
"""

from __future__ import annotations

from neck_common import dump_layout, feature_maps, save_case, seed_all

BN = dict(type="BN", requires_grad=True)
RETINA_ANCHORS = dict(
    type="AnchorGenerator",
    octave_base_scale=4,
    scales_per_octave=3,
    ratios=[0.5, 1.0, 2.0],
    strides=[8, 16, 32, 64, 128],
)
# configs/nas_fpn/retinanet_r50_nasfpn_crop640_50e_coco.py (v2.28.2), merged with its bases
FULL_NECK = dict(
    type="NASFPN",
    in_channels=[256, 512, 1024, 2048],
    out_channels=256,
    start_level=1,
    add_extra_convs="on_input",
    num_outs=5,
    stack_times=7,
    norm_cfg=BN,
)
FULL_HEAD = dict(
    type="RetinaSepBNHead",
    num_classes=80,
    in_channels=256,
    stacked_convs=4,
    feat_channels=256,
    anchor_generator=RETINA_ANCHORS,
    bbox_coder=dict(
        type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0, 1.0, 1.0, 1.0]
    ),
    loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox=dict(type="L1Loss", loss_weight=1.0),
    num_ins=5,
    norm_cfg=BN,
)
CHANNELS = [4, 8, 12, 16]
SIZES = [(34, 30), (17, 15), (9, 8), (5, 4)]


def main() -> None:
    seed_all(0)
    # MMDetection 3.3 dropped NASFPN's add_extra_convs (v2 stored it and never read it)
    dump_layout("nas_fpn", FULL_NECK, drop=["add_extra_convs"])
    dump_layout("nas_fpn", FULL_HEAD, "layout_head.json")
    small_neck = dict(FULL_NECK, in_channels=CHANNELS, out_channels=8, stack_times=2)
    feats = save_case(
        "nas_fpn",
        small_neck,
        feature_maps(CHANNELS, SIZES, seed=0),
        seed=1,
        drop=["add_extra_convs"],
    )
    small_head = dict(FULL_HEAD, num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2)
    save_case("nas_fpn", small_head, feats, seed=2, case="head", notes="input: the neck's output")


if __name__ == "__main__":
    main()
