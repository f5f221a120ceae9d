"""Golden fixture for FPN_CARAFE and the CARAFE mask head: tests/data/goldens/fpn_carafe/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/fpn_carafe.py

mmcv 2.1.0 has no CPU CARAFE kernel: mmcv's kernel source is compiled for the CPU and patched
into ``mmcv.ops.carafe`` first (see mmcv_carafe_cpu.py).
"""

from __future__ import annotations

import torch
from mmcv_carafe_cpu import patch_mmcv
from neck_common import dump_layout, feature_maps, save_case, seed_all

CARAFE = dict(
    type="carafe",
    up_kernel=5,
    up_group=1,
    encoder_kernel=3,
    encoder_dilation=1,
    compressed_channels=64,
)
# configs/carafe/mask_rcnn_r50_fpn_carafe_1x_coco.py (v2.28.2)
FULL = dict(
    type="FPN_CARAFE",
    in_channels=[256, 512, 1024, 2048],
    out_channels=256,
    num_outs=5,
    start_level=0,
    end_level=-1,
    norm_cfg=None,
    act_cfg=None,
    order=("conv", "norm", "act"),
    upsample_cfg=CARAFE,
)
FULL_MASK_HEAD = dict(
    type="FCNMaskHead",
    num_convs=4,
    in_channels=256,
    conv_out_channels=256,
    num_classes=80,
    loss_mask=dict(type="CrossEntropyLoss", use_mask=True, loss_weight=1.0),
    upsample_cfg=dict(CARAFE, scale_factor=2),
)
CHANNELS = [4, 8, 12, 16]
SIZES = [(23, 17), (12, 9), (6, 5), (3, 3)]
SMALL_CARAFE = dict(CARAFE, up_kernel=3, up_group=2, encoder_dilation=2, compressed_channels=4)


def main() -> None:
    seed_all(0)
    patch_mmcv()
    dump_layout("fpn_carafe", FULL)
    dump_layout("fpn_carafe", FULL_MASK_HEAD, "layout_mask_head.json")
    inputs = feature_maps(CHANNELS, SIZES, seed=0)
    small = dict(FULL, in_channels=CHANNELS, out_channels=8, upsample_cfg=SMALL_CARAFE)
    save_case("fpn_carafe", small, inputs, seed=1, notes="odd sizes: upsampled maps are cropped")
    nearest = dict(
        FULL,
        in_channels=CHANNELS,
        out_channels=8,
        num_outs=4,
        start_level=1,
        norm_cfg=dict(type="BN"),
        act_cfg=dict(type="ReLU"),
        order=("act", "conv", "norm"),
        upsample_cfg=dict(type="nearest"),
    )
    save_case("fpn_carafe", nearest, inputs, seed=2, case="nearest")
    head = dict(
        FULL_MASK_HEAD,
        num_convs=2,
        in_channels=8,
        conv_out_channels=8,
        num_classes=3,
        upsample_cfg=dict(SMALL_CARAFE, scale_factor=2),
    )
    rois = torch.randn((4, 8, 7, 7), generator=torch.Generator().manual_seed(3))
    save_case("fpn_carafe", head, rois, seed=4, case="mask_head")


if __name__ == "__main__":
    main()
