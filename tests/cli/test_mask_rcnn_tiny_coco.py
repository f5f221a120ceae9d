"""End to end on real data: `detforge train` a tiny Mask R-CNN on tiny_coco for a few
iterations, then `detforge test --eval bbox segm` prints both metric sets (issue "Models II")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.models.golden import FIXTURES

CONFIG = """
_base_ = ['{model}']
dataset_type = 'CocoDataset'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=(160, 160), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(160, 160), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='Pad', size_divisor=32),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img']),
    ]),
]
split = dict(type=dataset_type, ann_file='{ann}', img_prefix='{img}')
data = dict(
    samples_per_gpu=2, workers_per_gpu=0,
    train=dict(split, pipeline=train_pipeline),
    val=dict(split, pipeline=test_pipeline),
    test=dict(split, pipeline=test_pipeline),
)
evaluation = dict(interval=1, metric=['bbox', 'segm'])
optimizer = dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='step', warmup=None, step=[10])
runner = dict(type='EpochBasedRunner', max_epochs=1)
checkpoint_config = dict(interval=1)
log_config = dict(interval=2, hooks=[dict(type='TextLoggerHook')])
log_level = 'INFO'
load_from = '{weights}'
resume_from = None
workflow = [('train', 1)]
"""


def test_train_then_test_mask_rcnn_on_tiny_coco(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = FIXTURES / "mask_rcnn"
    if not fixture.is_dir():
        pytest.skip(f"{fixture} not found")
    coco = shared_data / "tiny_coco" / "small_coco"
    config = tmp_path / "tiny_mask_rcnn_tiny_coco.py"
    config.write_text(
        CONFIG.format(
            model=fixture / "model.py",
            ann=coco / "instances_train2017_small.json",
            img=coco / "train_2017_small",
            weights=fixture / "weights.pth",  # start from the fixture's trained weights
        )
    )
    work = tmp_path / "work"
    assert main(["train", str(config), "--work-dir", str(work), "--seed", "0",
                 "--device", "cpu", "--no-validate"]) == 0  # fmt: skip
    assert (work / "epoch_1.pth").is_file()
    log = sorted(work.glob("*.log.json"))[0].read_text().splitlines()
    train_lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert train_lines and all("loss_mask" in line for line in train_lines)

    capsys.readouterr()
    assert main(["test", str(config), str(work / "epoch_1.pth"), "--eval", "bbox", "segm",
                 "--device", "cpu"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for key in ("bbox_mAP", "bbox_mAP_copypaste", "segm_mAP", "segm_mAP_copypaste"):
        assert key in out, out[-2000:]
