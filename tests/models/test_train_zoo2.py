"""Model zoo II: `detforge train` runs 2 iterations of each one-stage family's standard config
at tiny widths (``--cfg-options``) on tiny_coco (4 of its images, batch 2, one epoch, so
epoch hooks such as TOOD's ``SetEpochInfoHook`` run), and logs the family's losses. One CPU
thread: on a shared 2-core machine two threads made an iteration 25x slower."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from detforge.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

WRAPPER = """
_base_ = ['{config}']
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale=(160, 160), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels']),
]
tiny_train = dict(ann_file='{ann}', img_prefix='{img}', pipeline=train_pipeline)
data = dict(samples_per_gpu=2, workers_per_gpu=0, train={train})
runner = dict(_delete_=True, type='EpochBasedRunner', max_epochs=1)
lr_config = dict(_delete_=True, policy='fixed')
checkpoint_config = dict(interval=1)
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook')])
"""

#: ResNet-18 at a quarter of the width, FPN and head at 32 channels
TINY = [
    "model.backbone.depth=18",
    "model.backbone.base_channels=16",
    "model.backbone.init_cfg=None",
    "model.neck.in_channels=[16,32,64,128]",
    "model.neck.out_channels=32",
    "model.bbox_head.in_channels=32",
    "model.bbox_head.feat_channels=32",
]
GN8 = ["model.bbox_head.norm_cfg.type=GN", "model.bbox_head.norm_cfg.num_groups=8"]
#: families whose neck or head is not an FPN one: their own tiny widths instead of TINY
FAMILY_TINY = {
    "ssd": [
        "model.backbone.widen_factor=0.25",
        "model.backbone.out_indices=[4,6]",
        "model.neck.in_channels=[24,80]",
        "model.neck.out_channels=[24,80,64,32,32,16]",
        "model.bbox_head.in_channels=[24,80,64,32,32,16]",
    ],
    "yolov3": [
        "model.backbone.widen_factor=0.25",
        "model.backbone.init_cfg=None",
        "model.neck.in_channels=[80,24,8]",
        "model.neck.out_channels=[24,24,24]",
        "model.bbox_head.in_channels=[24,24,24]",
        "model.bbox_head.out_channels=[24,24,24]",
    ],
    "yolof": [
        "model.backbone.depth=18",
        "model.backbone.base_channels=8",
        "model.backbone.init_cfg=None",
        "model.neck.in_channels=64",
        "model.neck.out_channels=32",
        "model.neck.block_mid_channels=16",
        "model.bbox_head.in_channels=32",
    ],
    "centernet": [
        "model.backbone.base_channels=16",
        "model.backbone.init_cfg=None",
        "model.neck.in_channel=128",
        "model.neck.num_deconv_filters=[32,16,16]",
        "model.bbox_head.in_channel=16",
        "model.bbox_head.feat_channel=16",
    ],
    **{
        family: [
            "model.backbone.downsample_times=2",
            "model.backbone.stage_channels=[16,16,24]",
            "model.backbone.stage_blocks=[1,1,1]",
            "model.backbone.feat_channel=16",
            "model.bbox_head.in_channels=16",
        ]
        for family in ("cornernet", "centripetalnet")
    },
}
#: families whose standard config trains on a RepeatDataset: tiny_coco goes inside, once
REPEATED = {"centernet", "ssd", "yolov3"}

#: family -> (standard config, extra options, the losses it logs)
CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "free_anchor": (
        "free_anchor/retinanet_free_anchor_r50_fpn_1x_coco.py",
        [],
        {"positive_bag_loss", "negative_bag_loss"},
    ),
    "autoassign": (
        "autoassign/autoassign_r50_fpn_8x2_1x_coco.py",
        GN8,
        {"loss_pos", "loss_neg", "loss_center"},
    ),
    "ddod": ("ddod/ddod_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox", "loss_iou"}),
    "foveabox": (
        "foveabox/fovea_align_r50_fpn_gn-head_4x4_2x_coco.py",
        GN8,
        {"loss_cls", "loss_bbox"},
    ),
    "fsaf": ("fsaf/fsaf_r50_fpn_1x_coco.py", [], {"loss_cls", "loss_bbox", "num_pos"}),
    "ghm": ("ghm/retinanet_ghm_r50_fpn_1x_coco.py", [], {"loss_cls", "loss_bbox"}),
    "guided_anchoring": (
        "guided_anchoring/ga_retinanet_r50_fpn_1x_coco.py",
        [],
        {"loss_cls", "loss_bbox", "loss_shape", "loss_loc"},
    ),
    "nas_fcos": (
        "nas_fcos/nas_fcos_nashead_r50_caffe_fpn_gn-head_4x4_1x_coco.py",
        GN8,
        {"loss_cls", "loss_bbox", "loss_centerness"},
    ),
    "paa": ("paa/paa_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox", "loss_iou"}),
    "sabl": (
        "sabl/sabl_retinanet_r50_fpn_1x_coco.py",
        [],
        {"loss_cls", "loss_bbox_cls", "loss_bbox_reg"},
    ),
    "tood": ("tood/tood_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox"}),
    "centernet": (
        "centernet/centernet_resnet18_dcnv2_140e_coco.py",
        [],
        {"loss_center_heatmap", "loss_wh", "loss_offset"},
    ),
    "cornernet": (
        "cornernet/cornernet_hourglass104_mstest_10x5_210e_coco.py",
        [],
        {"det_loss", "off_loss", "pull_loss", "push_loss"},
    ),
    "centripetalnet": (
        "centripetalnet/centripetalnet_hourglass104_mstest_16x6_210e_coco.py",
        [],
        {"det_loss", "off_loss", "guiding_loss", "centripetal_loss"},
    ),
    "reppoints": (
        "reppoints/reppoints_moment_r50_fpn_gn-neck+head_1x_coco.py",
        ["model.bbox_head.point_feat_channels=32"],
        {"loss_cls", "loss_pts_init", "loss_pts_refine"},
    ),
    "ssd": ("ssd/ssdlite_mobilenetv2_scratch_600e_coco.py", [], {"loss_cls", "loss_bbox"}),
    "yolov3": (
        "yolo/yolov3_mobilenetv2_320_300e_coco.py",
        [],
        {"loss_cls", "loss_conf", "loss_xy", "loss_wh"},
    ),
    "yolof": ("yolof/yolof_r50_c5_8x8_1x_coco.py", [], {"loss_cls", "loss_bbox"}),
}
NEEDS = {"paa": "sklearn"}


@pytest.mark.parametrize("family", sorted(CASES))
def test_two_iterations_of_the_standard_config(
    family: str, four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    if family in NEEDS:
        pytest.importorskip(NEEDS[family])
    config, options, loss_names = CASES[family]
    wrapper = tmp_path / f"tiny_{family}.py"
    wrapper.write_text(
        WRAPPER.format(
            config=CONFIGS / config,
            ann=four_images,
            img=shared_data / "tiny_coco" / "small_coco" / "train_2017_small",
            train="dict(times=1, dataset=tiny_train)" if family in REPEATED else "tiny_train",
        )
    )
    work = tmp_path / "work"
    argv = ["train", str(wrapper), "--work-dir", str(work), "--seed", "0", "--device", "cpu"]
    tiny = FAMILY_TINY.get(family, TINY)
    assert main([*argv, "--no-validate", "--cfg-options", *tiny, *options]) == 0
    assert (work / "epoch_1.pth").is_file()
    log = sorted(work.glob("*.log.json"))[0].read_text().splitlines()
    lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert [line["iter"] for line in lines] == [1, 2]
    for line in lines:
        assert loss_names <= set(line), line
        assert all(line[name] == line[name] for name in loss_names)  # not NaN


# YOLOX: the standard pipeline (MultiImageMixDataset with Mosaic, RandomAffine, MixUp, HSV) and
# hooks at 128 px, one batch of 4 per epoch, two epochs; num_last_epochs=0 makes the mode
# switch (no mosaic, L1 loss on) happen before the second epoch, as v2 counts.
YOLOX_WRAPPER = """
_base_ = ['{config}']
img_scale = (128, 128)
model = dict(input_size=img_scale, random_size_range=(3, 5), random_size_interval=1)
train_pipeline = [
    dict(type='Mosaic', img_scale=img_scale, pad_val=114.0),
    dict(type='RandomAffine', scaling_ratio_range=(0.1, 2), border=(-64, -64)),
    dict(type='MixUp', img_scale=img_scale, ratio_range=(0.8, 1.6), pad_val=114.0),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Resize', img_scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels']),
]
data = dict(samples_per_gpu=4, workers_per_gpu=0, persistent_workers=False,
            train=dict(dataset=dict(ann_file='{ann}', img_prefix='{img}'),
                       pipeline=train_pipeline))
runner = dict(max_epochs=2)
lr_config = dict(num_last_epochs=0, warmup_iters=1)
custom_hooks = [
    dict(type='YOLOXModeSwitchHook', num_last_epochs=0, priority=48),
    dict(type='SyncNormHook', num_last_epochs=0, interval=1, priority=48),
    dict(type='ExpMomentumEMAHook', resume_from=None, momentum=0.0001, priority=49),
]
checkpoint_config = dict(interval=2)
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook')])
"""
YOLOX_TINY = [
    "model.backbone.widen_factor=0.125",
    "model.neck.in_channels=[32,64,128]",
    "model.neck.out_channels=32",
    "model.bbox_head.in_channels=32",
    "model.bbox_head.feat_channels=32",
]


def test_yolox_two_iterations_switch_mode_and_keep_ema_buffers(
    four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    wrapper = tmp_path / "tiny_yolox.py"
    wrapper.write_text(
        YOLOX_WRAPPER.format(
            config=CONFIGS / "yolox/yolox_s_8x8_300e_coco.py",
            ann=four_images,
            img=shared_data / "tiny_coco" / "small_coco" / "train_2017_small",
        )
    )
    work = tmp_path / "work"
    argv = ["train", str(wrapper), "--work-dir", str(work), "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--no-validate", "--cfg-options", *YOLOX_TINY]) == 0
    log = sorted(work.glob("*.log.json"))[0].read_text().splitlines()
    lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert [(line["epoch"], line["iter"]) for line in lines] == [(1, 1), (2, 1)]
    assert {"loss_cls", "loss_bbox", "loss_obj"} <= set(lines[0]) and "loss_l1" not in lines[0]
    assert "loss_l1" in lines[1] and lines[1]["loss_l1"] == lines[1]["loss_l1"]  # not NaN
    # YOLOX's lr: quadratic warm-up over the first epoch (1 iteration), then the flat last epoch
    assert lines[0]["lr"] == pytest.approx(0.01) and lines[1]["lr"] == pytest.approx(0.0005)
    state = torch.load(work / "epoch_2.pth", weights_only=False)["state_dict"]
    ema = [k for k in state if k.startswith("ema_")]
    assert len(ema) * 2 == len(state)  # every state-dict entry has its v2 ema_ buffer
    assert "ema_backbone_stem_conv_bn_running_mean" in state
