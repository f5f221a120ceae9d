"""analyze-anchors on a crafted dataset whose best anchor IoUs are known by hand."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from detforge.analysis.anchors import (
    AnchorCoverage,
    anchor_coverage,
    assigner_thresholds,
    best_anchor_ious,
    find_anchor_generator,
    format_coverage,
    plot_iou_histogram,
)
from detforge.datasets.builder import build_dataset
from detforge.models.task_modules.prior_generators import AnchorGenerator

# 32x32 anchors every 16 px (centre offset 0) on a 256x256 image; boxes centred on anchors.
BOXES = np.array(
    [
        [48, 48, 80, 80],  # square on an anchor: IoU 1 (medium, h/w 1)
        [112, 112, 144, 144],  # same: IoU 1
        [48, 148, 80, 172],  # 32x24: 768 / 1024 = 0.75 (small)
        [64, 60, 192, 68],  # 128x8 thin: 256 / 1792 = 1/7 (h/w 1/16)
        [188, 64, 196, 192],  # 8x128 thin: 1/7 (h/w 16)
        [96, 200, 160, 216],  # 64x16: 512 / 1536 = 1/3 (h/w 1/4)
    ],
    np.float32,
)
EXPECTED_IOUS = [1.0, 1.0, 0.75, 1 / 7, 1 / 7, 1 / 3]
GENERATOR = dict(type="AnchorGenerator", strides=[16], ratios=[1.0], scales=[2.0])
PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Pad", size_divisor=32),
]


def write_thin_dataset(root: Path) -> dict:
    """A one-image middle-format dataset with :data:`BOXES`; returns its dataset config."""
    cv2.imwrite(str(root / "thin.png"), np.full((256, 256, 3), 90, np.uint8))
    ann = dict(bboxes=BOXES, labels=np.zeros(len(BOXES), np.int64))
    infos = [dict(filename="thin.png", width=256, height=256, ann=ann)]
    with open(root / "thin.pkl", "wb") as f:
        pickle.dump(infos, f)
    return dict(type="CustomDataset", ann_file=str(root / "thin.pkl"), img_prefix=str(root),
                classes=("thing",), pipeline=PIPELINE)  # fmt: skip


def test_best_anchor_ious_match_hand_computation() -> None:
    gen = AnchorGenerator(strides=[16], ratios=[1.0], scales=[2.0])
    ious = best_anchor_ious(BOXES, gen, (256, 256, 3), chunk=4)
    np.testing.assert_allclose(ious, EXPECTED_IOUS, rtol=1e-5)
    assert best_anchor_ious(np.zeros((0, 4)), gen, (256, 256)).shape == (0,)


def test_coverage_shares_by_bucket(tmp_path: Path) -> None:
    dataset = build_dataset(write_thin_dataset(tmp_path))
    gen = AnchorGenerator(strides=[16], ratios=[1.0], scales=[2.0])
    cov = anchor_coverage(dataset, gen, dict(pos_iou_thr=0.5, min_pos_iou=0.3))
    np.testing.assert_allclose(np.sort(cov.ious), np.sort(EXPECTED_IOUS), rtol=1e-5)
    rows = {row["bucket"]: row for row in cov.summary()}
    assert rows["all"]["num_gts"] == 6
    assert rows["all"]["below_pos_iou_thr"] == pytest.approx(3 / 6)
    assert rows["all"]["below_min_pos_iou"] == pytest.approx(2 / 6)
    assert rows["all"]["mean_iou"] == pytest.approx(np.mean(EXPECTED_IOUS), rel=1e-5)
    assert (rows["small"]["num_gts"], rows["small"]["below_pos_iou_thr"]) == (1, 0.0)
    assert rows["medium"]["num_gts"] == 5
    assert rows["medium"]["below_pos_iou_thr"] == pytest.approx(3 / 5)
    assert rows["medium"]["below_min_pos_iou"] == pytest.approx(2 / 5)
    assert rows["large"]["num_gts"] == 0
    assert (rows["h/w<1/4"]["num_gts"], rows["h/w<1/4"]["below_min_pos_iou"]) == (1, 1.0)
    assert (rows["1/4-1/2"]["below_pos_iou_thr"], rows["1/4-1/2"]["below_min_pos_iou"]) == (1, 0)
    assert (rows["1/2-2"]["num_gts"], rows["1/2-2"]["below_pos_iou_thr"]) == (3, 0.0)
    assert (rows["h/w>=4"]["num_gts"], rows["h/w>=4"]["below_min_pos_iou"]) == (1, 1.0)
    table = format_coverage(cov)
    assert "50.0%" in table and "33.3%" in table and table.count("\n") == 10
    png = plot_iou_histogram(cov, tmp_path / "hist.png")
    assert png.stat().st_size > 1000


def test_config_lookups() -> None:
    model = dict(
        rpn_head=dict(anchor_generator=GENERATOR), bbox_head=dict(anchor_generator=None),
        train_cfg=dict(rpn=dict(assigner=dict(pos_iou_thr=0.7, min_pos_iou=0.3)),
                       rcnn=dict(assigner=dict(pos_iou_thr=0.5))),
    )  # fmt: skip
    assert find_anchor_generator(model) == ("rpn_head", GENERATOR)
    assert assigner_thresholds(dict(model=model), "rpn_head") == dict(
        pos_iou_thr=0.7, min_pos_iou=0.3
    )
    atss = dict(model=dict(train_cfg=dict(assigner=dict(type="ATSSAssigner", topk=9))))
    assert assigner_thresholds(atss, "bbox_head") == {}
    with pytest.raises(KeyError, match="anchor-free"):
        find_anchor_generator(dict(type="FCOS", bbox_head=dict(type="FCOSHead")))


def test_empty_buckets_format() -> None:
    cov = AnchorCoverage(np.zeros(0), np.zeros(0), np.zeros(0), {"pos_iou_thr": 0.5})
    assert all(row["num_gts"] == 0 for row in cov.summary())
    assert "-" in format_coverage(cov)
