"""Model zoo III: `detforge train` runs 2 iterations of each family's standard config
at tiny widths (``--cfg-options``) on tiny_coco (4 of its images, batch 2, one epoch) and logs
the family's losses. One CPU thread (two threads on a shared 2-core machine are much slower)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
data = dict(samples_per_gpu=2, workers_per_gpu=0,
            train=dict(ann_file='{ann}', img_prefix='{img}', pipeline=train_pipeline))
runner = dict(_delete_=True, type='EpochBasedRunner', max_epochs=1)
lr_config = dict(_delete_=True, policy='fixed')
checkpoint_config = dict(interval=1)
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook')])
"""

#: ResNet-18 at a quarter of the width and an FPN at 32 channels
BACKBONE_NECK = [
    "model.backbone.depth=18",
    "model.backbone.base_channels=16",
    "model.backbone.init_cfg=None",
    "model.neck.in_channels=[16,32,64,128]",
    "model.neck.out_channels=32",
]
#: ResNet-18 at a quarter of the width, FPN, RPN and box head at 32 channels
TINY = [
    *BACKBONE_NECK,
    "model.rpn_head.in_channels=32",
    "model.rpn_head.feat_channels=32",
    "model.roi_head.bbox_roi_extractor.out_channels=32",
    "model.roi_head.bbox_head.in_channels=32",
    "model.roi_head.bbox_head.fc_out_channels=64",
]

#: the wrapper's pipeline with the instance masks (mask families)
WITH_MASKS = [
    "data.train.pipeline.1.with_mask=True",
    "data.train.pipeline.7.keys=[img,gt_bboxes,gt_labels,gt_masks]",
]

#: family -> (standard config, extra options, the losses it logs)
CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "groie": (
        "groie/faster_rcnn_r50_fpn_groie_1x_coco.py",
        [
            "model.roi_head.bbox_roi_extractor.pre_cfg.in_channels=32",
            "model.roi_head.bbox_roi_extractor.pre_cfg.out_channels=32",
            "model.roi_head.bbox_roi_extractor.post_cfg.in_channels=32",
        ],
        {"loss_rpn_cls", "loss_cls", "loss_bbox"},
    ),
    "libra_rcnn": (
        "libra_rcnn/libra_faster_rcnn_r50_fpn_1x_coco.py",
        [
            "model.neck.0.in_channels=[16,32,64,128]",
            "model.neck.0.out_channels=32",
            "model.neck.1.in_channels=32",
        ],
        {"loss_rpn_cls", "loss_cls", "loss_bbox"},
    ),
    "pisa": (
        "pisa/pisa_faster_rcnn_r50_fpn_1x_coco.py",
        [],
        {"loss_rpn_cls", "loss_cls", "loss_bbox", "loss_carl"},
    ),
    "ms_rcnn": (
        "ms_rcnn/ms_rcnn_r50_caffe_fpn_1x_coco.py",
        [
            *WITH_MASKS,
            "model.roi_head.mask_roi_extractor.out_channels=32",
            "model.roi_head.mask_head.in_channels=32",
            "model.roi_head.mask_head.conv_out_channels=32",
            "model.roi_head.mask_iou_head.in_channels=32",
            "model.roi_head.mask_iou_head.conv_out_channels=32",
            "model.roi_head.mask_iou_head.fc_out_channels=64",
        ],
        {"loss_rpn_cls", "loss_cls", "loss_bbox", "loss_mask", "loss_mask_iou"},
    ),
    "point_rend": (
        "point_rend/point_rend_r50_caffe_fpn_mstrain_1x_coco.py",
        [
            *WITH_MASKS,
            "model.roi_head.mask_roi_extractor.out_channels=32",
            "model.roi_head.mask_head.in_channels=32",
            "model.roi_head.mask_head.conv_out_channels=32",
            "model.roi_head.mask_head.fc_out_channels=64",
            "model.roi_head.point_head.in_channels=32",
            "model.roi_head.point_head.fc_channels=32",
        ],
        {"loss_rpn_cls", "loss_cls", "loss_bbox", "loss_mask", "loss_point"},
    ),
}


def _train_two_iterations(
    config: str, options: list[str], loss_names: set[str], data: tuple[Path, Path], work: Path
) -> None:
    """``detforge train`` of ``config`` (wrapped for tiny_coco) logs 2 iterations of losses."""
    if not (CONFIGS / config).is_file():
        pytest.skip(f"{config} is not shipped yet")
    wrapper = work.parent / f"tiny_{Path(config).stem}.py"
    wrapper.write_text(WRAPPER.format(config=CONFIGS / config, ann=data[0], img=data[1]))
    argv = ["train", str(wrapper), "--work-dir", str(work), "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--no-validate", "--cfg-options", *options]) == 0
    assert (work / "epoch_1.pth").is_file()
    log = sorted(work.glob("*.log.json"))[0].read_text().splitlines()
    lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert [line["iter"] for line in lines] == [1, 2]
    for line in lines:
        assert loss_names <= set(line), line
        assert all(line[name] == line[name] for name in loss_names)  # not NaN


@pytest.mark.parametrize("family", sorted(CASES))
def test_two_iterations_of_the_standard_config(
    family: str, four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    config, options, loss_names = CASES[family]
    # a family whose neck is a list (Libra R-CNN: FPN + BFP) sets its necks' widths itself
    if any(option.startswith("model.neck.") for option in options):
        tiny = [t for t in TINY if not t.startswith("model.neck.")]
    else:
        tiny = TINY
    images = shared_data / "tiny_coco" / "small_coco" / "train_2017_small"
    _train_two_iterations(
        config, [*tiny, *options], loss_names, (four_images, images), tmp_path / "work"
    )


#: DETR-family transformers at 32 channels, 2 encoder and decoder layers, 10 queries
_T = "model.bbox_head.transformer."
_QUERY_TINY = [
    "model.backbone.depth=18",
    "model.backbone.base_channels=16",
    "model.backbone.init_cfg=None",
    "model.bbox_head.num_query=10",
    "model.bbox_head.positional_encoding.num_feats=16",
    *(f"{_T}{part}.num_layers=2" for part in ("encoder", "decoder")),
    *(f"{_T}{part}.transformerlayers.feedforward_channels=64" for part in ("encoder", "decoder")),
]
_QUERY_LOSSES = {f"{p}{n}" for p in ("", "d0.") for n in ("loss_cls", "loss_bbox", "loss_iou")}
#: family -> (standard config, options, the losses it logs)
QUERY_CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "detr": (
        "detr/detr_r50_8x2_150e_coco.py",
        [
            *_QUERY_TINY,
            "model.bbox_head.in_channels=128",
            f"{_T}encoder.transformerlayers.attn_cfgs.0.embed_dims=32",
            f"{_T}decoder.transformerlayers.attn_cfgs.embed_dims=32",
            "model.test_cfg.max_per_img=10",
        ],
        _QUERY_LOSSES,
    ),
    "deformable_detr": (
        "deformable_detr/deformable_detr_r50_16x2_50e_coco.py",
        [
            *_QUERY_TINY,
            "model.neck.in_channels=[32,64,128]",
            "model.neck.out_channels=32",
            f"{_T}encoder.transformerlayers.attn_cfgs.embed_dims=32",
            *(f"{_T}decoder.transformerlayers.attn_cfgs.{i}.embed_dims=32" for i in (0, 1)),
        ],
        _QUERY_LOSSES,
    ),
}


@pytest.mark.parametrize("family", sorted(QUERY_CASES))
def test_two_iterations_of_a_query_based_config(
    family: str, four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    config, options, loss_names = QUERY_CASES[family]
    images = shared_data / "tiny_coco" / "small_coco" / "train_2017_small"
    _train_two_iterations(config, options, loss_names, (four_images, images), tmp_path / "work")


#: Sparse R-CNN and QueryInst -> (standard config, options after BACKBONE_NECK, the losses it logs)
#: Sparse R-CNN's six DIIHead stages at 32 channels, 20 learned proposals
SPARSE_TINY = [
    "model.rpn_head.num_proposals=20",
    "model.rpn_head.proposal_feature_channel=32",
    "model.roi_head.proposal_feature_channel=32",
    "model.roi_head.bbox_roi_extractor.out_channels=32",
    *(
        f"model.roi_head.bbox_head.{i}.{key}={value}"
        for i in range(6)
        for key, value in (
            ("in_channels", 32),
            ("feedforward_channels", 64),
            ("dynamic_conv_cfg.in_channels", 32),
            ("dynamic_conv_cfg.feat_channels", 16),
            ("dynamic_conv_cfg.out_channels", 32),
        )
    ),
]
#: QueryInst: Sparse R-CNN's tiny stages, tiny dynamic mask heads, masks in the pipeline
QUERYINST_TINY = [
    *SPARSE_TINY,
    "model.roi_head.mask_roi_extractor.out_channels=32",
    *(
        f"model.roi_head.mask_head.{i}.{key}={value}"
        for i in range(6)
        for key, value in (
            ("in_channels", 32),
            ("conv_out_channels", 16),
            ("dynamic_conv_cfg.in_channels", 32),
            ("dynamic_conv_cfg.feat_channels", 16),
            ("dynamic_conv_cfg.out_channels", 32),
        )
    ),
    "data.train.pipeline.1.with_mask=True",
    "data.train.pipeline.7.keys=[img,gt_bboxes,gt_labels,gt_masks]",
]
SPARSE_CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "sparse_rcnn": (
        "sparse_rcnn/sparse_rcnn_r50_fpn_1x_coco.py",
        SPARSE_TINY,
        {f"stage{i}_{name}" for i in (0, 5) for name in ("loss_cls", "loss_bbox", "loss_iou")},
    ),
    "queryinst": (
        "queryinst/queryinst_r50_fpn_1x_coco.py",
        QUERYINST_TINY,
        {f"stage{i}_{name}" for i in (0, 5) for name in ("loss_cls", "loss_iou", "loss_mask")},
    ),
}


@pytest.mark.parametrize("family", sorted(SPARSE_CASES))
def test_two_iterations_of_a_sparse_config(
    family: str, four_images: Path, shared_data: Path, tmp_path: Path, one_thread: None
) -> None:
    config, options, loss_names = SPARSE_CASES[family]
    images = shared_data / "tiny_coco" / "small_coco" / "train_2017_small"
    argv = [*BACKBONE_NECK, *options]
    _train_two_iterations(config, argv, loss_names, (four_images, images), tmp_path / "work")
