"""The model-zoo training check shared by test_train_zoo2.py and test_train_zoo3.py:
`detforge train` runs 2 iterations of a family's standard config at tiny widths
(``--cfg-options``) on 4 images of tiny_coco (batch 2, one epoch) and logs the family's
losses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

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


def four_images(shared_data: Path, folder: Path) -> Path:
    """4 landscape images of tiny_coco (one aspect-ratio group: 2 batches) and their boxes, as
    a COCO json under ``folder``."""
    coco = shared_data / "tiny_coco" / "small_coco"
    data = json.loads((coco / "instances_train2017_small.json").read_text())
    images = [image for image in data["images"] if image["width"] > image["height"]][:4]
    ids = {image["id"] for image in images}
    data["images"] = images
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    path = folder / "four.json"
    path.write_text(json.dumps(data))
    return path


def train_two_iterations(
    config: str,
    ann: Path,
    shared_data: Path,
    tmp_path: Path,
    options: Sequence[str],
    loss_names: set[str],
) -> None:
    """Train ``configs/<config>`` on ``ann`` with ``options`` and check that both iterations
    log ``loss_names`` (not NaN) and the epoch's checkpoint is written."""
    wrapper = tmp_path / f"tiny_{Path(config).stem}.py"
    wrapper.write_text(
        WRAPPER.format(
            config=CONFIGS / config,
            ann=ann,
            img=shared_data / "tiny_coco" / "small_coco" / "train_2017_small",
        )
    )
    work = tmp_path / "work"
    argv = ["train", str(wrapper), "--work-dir", str(work), "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--no-validate", "--cfg-options", *options]) == 0
    assert (work / "epoch_1.pth").is_file()
    log = sorted(work.glob("*.log.json"))[0].read_text().splitlines()
    lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert [line["iter"] for line in lines] == [1, 2]
    for line in lines:
        assert loss_names <= set(line), line
        assert all(line[name] == line[name] for name in loss_names)  # not NaN
