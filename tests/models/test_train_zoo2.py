"""Model zoo II: `detforge train` runs 2 iterations of each one-stage family's standard config
at tiny widths (``--cfg-options``) on tiny_coco (4 of its images, batch 2, one epoch, so
epoch hooks such as TOOD's ``SetEpochInfoHook`` run), and logs the family's losses. One CPU
thread: on a shared 2-core machine two threads made an iteration 25x slower."""

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

#: family -> (standard config, extra options, the losses it logs)
CASES: dict[str, tuple[str, list[str], set[str]]] = {
    "free_anchor": (
        "free_anchor/retinanet_free_anchor_r50_fpn_1x_coco.py",
        [],
        {"positive_bag_loss", "negative_bag_loss"},
    ),
    "autoassign": (
        "autoassign/autoassign_r50_fpn_8x2_1x_coco.py",
        [*GN8, "total_epochs=1"],  # its config still has v2's old total_epochs
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
    "paa": ("paa/paa_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox", "loss_iou"}),
    "tood": ("tood/tood_r50_fpn_1x_coco.py", GN8, {"loss_cls", "loss_bbox"}),
}
NEEDS = {"paa": "sklearn"}


@pytest.fixture(scope="module")
def four_images(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 landscape images of tiny_coco (one aspect-ratio group: 2 batches) and their boxes."""
    coco = shared_data / "tiny_coco" / "small_coco"
    data = json.loads((coco / "instances_train2017_small.json").read_text())
    images = [image for image in data["images"] if image["width"] > image["height"]][:4]
    ids = {image["id"] for image in images}
    data["images"] = images
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    path = tmp_path_factory.mktemp("tiny_coco") / "four.json"
    path.write_text(json.dumps(data))
    return path


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
        )
    )
    work = tmp_path / "work"
    argv = ["train", str(wrapper), "--work-dir", str(work), "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--no-validate", "--cfg-options", *TINY, *options]) == 0
    assert (work / "epoch_1.pth").is_file()
    log = sorted(work.glob("*.log.json"))[0].read_text().splitlines()
    lines = [json.loads(x) for x in log[1:] if '"mode": "train"' in x]
    assert [line["iter"] for line in lines] == [1, 2]
    for line in lines:
        assert loss_names <= set(line), line
        assert all(line[name] == line[name] for name in loss_names)  # not NaN
