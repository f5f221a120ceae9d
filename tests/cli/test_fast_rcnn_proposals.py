"""Fast R-CNN on precomputed proposals, end to end on tiny_coco as v2's tools do it:
`detforge test <rpn config> --out proposals.pkl --eval proposal_fast` writes and evaluates an
RPN's proposals (the RPN of the shared Faster R-CNN fixture), then `detforge train` and
`detforge test --eval bbox` run the FastRCNN config on them (``proposal_file``,
``LoadProposals``)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.cli.main import main
from tests.models.golden import FIXTURES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

DATA = """
_base_ = ['{config}']
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    {load_proposals}
    dict(type='MultiScaleFlipAug', img_scale=(320, 320), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='Pad', size_divisor=32),
        dict(type='ImageToTensor', keys=['img']),
        {to_tensor}
        dict(type='Collect', keys={keys}),
    ]),
]
split = dict(ann_file='{ann}', img_prefix='{img}')
data = dict(samples_per_gpu=2, workers_per_gpu=0,
            train=dict(split, proposal_file={proposals}),
            val=dict(split, pipeline=test_pipeline),
            test=dict(split, proposal_file={proposals}, pipeline=test_pipeline))
runner = dict(_delete_=True, type='EpochBasedRunner', max_epochs=1)
lr_config = dict(_delete_=True, policy='fixed')
optimizer = dict(lr=0.001)
checkpoint_config = dict(interval=1)
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook')])
load_from = '{weights}'
"""
FAST_TRAIN = """
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', num_max_proposals=300),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'proposals', 'gt_bboxes', 'gt_labels']),
]
data['train']['pipeline'] = train_pipeline
"""
#: the fixture's widths (ResNet-18 at a quarter width, FPN/RPN/RoI head at 32 channels)
TINY = [
    "model.backbone.depth=18",
    "model.backbone.base_channels=16",
    "model.backbone.init_cfg=None",
    "model.neck.in_channels=[16,32,64,128]",
    "model.neck.out_channels=32",
]
RPN = ["model.rpn_head.in_channels=32", "model.rpn_head.feat_channels=32"]
ROI = [
    "model.roi_head.bbox_roi_extractor.out_channels=32",
    "model.roi_head.bbox_head.in_channels=32",
    "model.roi_head.bbox_head.fc_out_channels=64",
]


def _write(path: Path, config: str, shared: Path, proposals: Path | None, weights: Path) -> Path:
    coco = shared / "tiny_coco" / "small_coco"
    fast = proposals is not None
    text = DATA.format(
        config=CONFIGS / config,
        load_proposals="dict(type='LoadProposals', num_max_proposals=None)," if fast else "",
        to_tensor=(
            "dict(type='ToTensor', keys=['proposals']), dict(type='ToDataContainer', "
            "fields=[dict(key='proposals', stack=False)]),"
            if fast
            else ""
        ),
        keys=["img", "proposals"] if fast else ["img"],
        ann=coco / "instances_train2017_small.json",
        img=coco / "train_2017_small",
        proposals=repr(str(proposals)) if fast else None,
        weights=weights,
    )
    path.write_text(text + (FAST_TRAIN if fast else ""))
    return path


@pytest.fixture()
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_rpn_proposals_then_fast_rcnn(shared_data: Path, tmp_path: Path, one_thread: None) -> None:
    weights = FIXTURES / "faster_rcnn" / "weights.pth"
    if not weights.is_file():
        pytest.skip(f"{weights} not found")
    rpn = _write(tmp_path / "rpn.py", "rpn/rpn_r50_fpn_1x_coco.py", shared_data, None, weights)
    out = tmp_path / "proposals.pkl"
    work = tmp_path / "rpn_work"
    argv = ["test", str(rpn), str(weights), "--out", str(out), "--eval", "proposal_fast"]
    argv += ["--work-dir", str(work), "--device", "cpu", "--cfg-options", *TINY, *RPN]
    assert main(argv) == 0
    with out.open("rb") as f:
        proposals = pickle.load(f)
    ann = shared_data / "tiny_coco" / "small_coco" / "instances_train2017_small.json"
    num_images = len(json.loads(ann.read_text())["images"])
    assert len(proposals) == num_images
    assert all(isinstance(p, np.ndarray) and p.shape[1] == 5 for p in proposals)
    assert max(len(p) for p in proposals) <= 1000  # the RPN's test_cfg max_per_img
    metrics = json.loads(sorted(work.glob("eval_*.json"))[0].read_text())["metric"]
    assert 0 < metrics["AR@1000"] <= 1 and metrics["AR@100"] <= metrics["AR@1000"]

    fast = _write(tmp_path / "fast.py", "fast_rcnn/fast_rcnn_r50_fpn_1x_coco.py", shared_data,
                  out, weights)  # fmt: skip
    train_work = tmp_path / "fast_work"
    argv = ["train", str(fast), "--work-dir", str(train_work), "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--no-validate", "--cfg-options", *TINY, *ROI]) == 0
    log = sorted(train_work.glob("*.log.json"))[0].read_text().splitlines()
    lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert lines and all({"loss_cls", "loss_bbox"} <= set(line) for line in lines)
    assert not any(key.startswith("loss_rpn") for line in lines for key in line)
    argv = ["test", str(fast), str(train_work / "epoch_1.pth"), "--eval", "bbox"]
    argv += ["--work-dir", str(train_work), "--device", "cpu", "--cfg-options", *TINY, *ROI]
    assert main(argv) == 0
    metrics = json.loads(sorted(train_work.glob("eval_*.json"))[0].read_text())["metric"]
    assert metrics["bbox_mAP_50"] > 0
