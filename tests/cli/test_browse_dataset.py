"""``detforge browse-dataset``: GT drawn after the train pipeline (boxes, labels, masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.browse import browse_dataset, skip_pipeline_steps
from detforge.cli.main import main
from detforge.config import load_config
from detforge.datasets.builder import build_dataset
from detforge.utils.image import imread
from tests.analysis.bccd import IMAGES, write_bccd_config


def _train_dataset(config: Path):
    train = load_config(config).cfg.data.train
    skip_pipeline_steps(train)
    return build_dataset(train)


def test_bccd_boxes_are_drawn_where_resize_and_flip_put_them(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_bccd_config(tmp_path, shared_data, flip_ratio=1.0)
    out = tmp_path / "browse"
    assert main(["browse-dataset", str(config), "--output-dir", str(out), "--not-show"]) == 0
    printed = capsys.readouterr().out
    assert "LoadImageFromFile -> LoadAnnotations -> Resize -> RandomFlip -> Pad" in printed
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.jpg" for name in IMAGES]

    dataset = _train_dataset(config)
    item = dataset[0]  # BloodImage_00007, 640x480 -> 320x240, flipped, padded to 320x256
    ann = dataset.get_ann_info(0)
    expected = ann["bboxes"] * 0.5
    expected[:, [0, 2]] = 320 - expected[:, [2, 0]]
    np.testing.assert_allclose(item["gt_bboxes"], expected, atol=1e-3)
    drawn = imread(out / "BloodImage_00007.jpg")
    assert drawn.shape == item["img"].shape == (256, 320, 3)
    changed = np.abs(drawn.astype(int) - item["img"].astype(int)).sum(-1) > 60  # jpeg noise
    for x1, y1, _, y2 in np.round(expected).astype(int):
        ys = slice(max(y1, 0) + 8, y2 - 2)  # the left edge, below the label
        assert changed[ys, max(x1 - 1, 0) : x1 + 2].any(axis=1).mean() > 0.8
    assert not changed[250:, :].any()  # the padding below the image stays black


def test_masks_are_drawn_after_the_pipeline(tmp_path: Path, shared_data: Path) -> None:
    root = shared_data / "tiny_coco" / "small_coco"
    config = tmp_path / "coco_masks.py"
    config.write_text(f"""\
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
data = dict(train=dict(
    type='CocoDataset', ann_file={str(root / "instances_train2017_small.json")!r},
    img_prefix={str(root / "train_2017_small")!r} + '/',
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', img_scale=(320, 320), keep_ratio=True),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
    ]))
""")
    dataset = _train_dataset(config)
    written = browse_dataset(dataset, output_dir=tmp_path / "out", limit=2)
    assert len(written) == 2
    item = dataset[0]
    masks = item["gt_masks"].to_ndarray().astype(bool)
    drawn = imread(written[0]).astype(int)
    assert drawn.shape == item["img"].shape and max(drawn.shape[:2]) == 320
    inside = masks.any(0)
    diff = np.abs(drawn - item["img"].astype(int)).sum(-1)
    assert diff[inside].mean() > 40  # tinted
    outside = ~inside
    for x1, y1, x2, y2 in item["gt_bboxes"].astype(int):  # boxes and labels are drawn too
        outside[max(y1 - 30, 0) : y2 + 3, max(x1 - 3, 0) : x2 + 60] = False
    assert (diff[outside] > 60).mean() < 0.02  # elsewhere only jpeg noise
