"""An image whose file has another size than its annotation declares (COCO and VOC-style XML)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from detforge.datasets import CocoDataset, DatasetError, XMLDataset
from detforge.datasets.transforms.loading import LoadAnnotations, LoadImageFromFile

BOXES = [[64, 48, 320, 240], [320, 240, 640, 480]]
TRAIN_PIPELINE: list[dict[str, Any]] = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", img_scale=(1333, 800), keep_ratio=True),
]


def write_image(path: Path, width: int, height: int) -> None:
    cv2.imwrite(str(path), np.full((height, width, 3), 100, np.uint8))


def write_coco(root: Path, real: dict[str, tuple[int, int]]) -> Path:
    """Images declared 640x480 in the json; ``real`` gives each file's (width, height)."""
    images, anns = [], []
    for i, (name, (w, h)) in enumerate(real.items(), start=1):
        write_image(root / name, w, h)
        images.append(dict(id=i, file_name=name, width=640, height=480))
        for j, (x1, y1, x2, y2) in enumerate(BOXES):
            box = [x1, y1, x2 - x1, y2 - y1]
            anns.append(
                dict(
                    id=10 * i + j,
                    image_id=i,
                    category_id=1,
                    bbox=box,
                    area=box[2] * box[3],
                    iscrowd=0,
                    segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]],
                )
            )
    ann_file = root / "ann.json"
    ann_file.write_text(
        json.dumps(dict(images=images, annotations=anns, categories=[dict(id=1, name="cell")]))
    )
    return ann_file


def coco(root: Path, real: dict[str, tuple[int, int]], **kwargs: Any) -> CocoDataset:
    args: dict[str, Any] = dict(pipeline=TRAIN_PIPELINE, classes=("cell",), img_prefix=str(root))
    args.update(kwargs)
    return CocoDataset(ann_file=str(write_coco(root, real)), **args)


def test_one_pixel_image_declared_640x480_keeps_its_boxes_apart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = coco(tmp_path, {"tiny.png": (1, 1)})
    with caplog.at_level(logging.WARNING, logger="detforge"):
        sample = ds[0]
    # 1x1 resizes to 800x800; the boxes, rescaled from 640x480 to 1x1 first, keep their layout
    # (before: both became [800, 800, 800, 800] after clipping, the image's corner)
    expected = np.array(BOXES, np.float32) * [800 / 640, 800 / 480, 800 / 640, 800 / 480]
    np.testing.assert_allclose(sample["gt_bboxes"], expected, rtol=1e-5)
    warnings = [r.getMessage() for r in caplog.records if "tiny.png" in r.getMessage()]
    assert len(warnings) == 1 and "declares 640x480" in warnings[0] and "is 1x1" in warnings[0]
    assert (
        ds.issues.count(
            "images whose real size differs from the annotation's (boxes and masks rescaled)"
        )
        == 1
    )


def test_warned_once_per_file_and_masks_follow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_image(tmp_path / "half.png", 320, 240)
    quarter = np.zeros((480, 640), np.uint8, order="F")
    quarter[:240, :320] = 1
    rle = mask_utils.encode(quarter)
    load_image = LoadImageFromFile()

    def sample() -> dict[str, Any]:
        results = dict(
            img_prefix=str(tmp_path),
            img_info=dict(filename="half.png", width=640, height=480),
            ann_info=dict(
                bboxes=np.array(BOXES, np.float32),
                labels=np.array([0, 0]),
                masks=[[[64, 48, 320, 48, 320, 240, 64, 240]], rle],
            ),
        )
        return LoadAnnotations(with_mask=True)(load_image(results))

    with caplog.at_level(logging.WARNING, logger="detforge"):
        out = sample()
        sample()
    assert sum("half.png" in r.getMessage() for r in caplog.records) == 1
    np.testing.assert_allclose(out["gt_bboxes"], np.array(BOXES) / 2)
    masks = out["gt_masks"]
    assert (masks.height, masks.width) == (240, 320) == out["img_shape"][:2]
    # the polygon covers [32, 24, 160, 120], the RLE the top-left quarter of the image
    assert abs(int(masks.masks[0].sum()) - 128 * 96) <= 128 + 96 + 1
    assert int(masks.masks[1].sum()) == 160 * 120


def test_drop_policy_draws_another_image_and_counts(tmp_path: Path) -> None:
    pipeline = [dict(TRAIN_PIPELINE[0], size_mismatch="drop"), *TRAIN_PIPELINE[1:]]
    ds = coco(tmp_path, {"tiny.png": (1, 1), "ok.png": (640, 480)}, pipeline=pipeline)
    np.random.seed(0)
    assert ds[0]["ori_filename"] == "ok.png"
    assert ds.issues.kinds == {
        "images whose real size differs from the annotation's": [str(tmp_path / "tiny.png")]
    }
    test_ds = coco(tmp_path, {"tiny.png": (1, 1)}, pipeline=pipeline[:1], test_mode=True)
    with pytest.raises(DatasetError, match=r"ann\.json\): the test pipeline dropped tiny\.png"):
        test_ds[0]


def test_error_policy_and_strict_datasets_name_the_file_and_both_sizes(tmp_path: Path) -> None:
    pipeline = [dict(type="LoadImageFromFile", size_mismatch="error")]
    ds = coco(tmp_path, {"tiny.png": (1, 1)}, pipeline=pipeline)
    with pytest.raises(
        DatasetError,
        match=r"ann\.json\).*tiny\.png: the annotation declares "
        r"640x480 \(width x height\), the decoded image is 1x1",
    ):
        ds[0]
    strict = coco(tmp_path, {"tiny.png": (1, 1)}, strict=True)
    with pytest.raises(DatasetError, match=r"tiny\.png.*strict mode"):
        strict[0]
    with pytest.raises(ValueError, match="size_mismatch must be one of"):
        LoadImageFromFile(size_mismatch="ignore")


def test_exif_rotation_applied_by_the_decoder_is_no_mismatch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20)).save(tmp_path / "rot.jpg", exif=exif.tobytes())
    boxes = np.array([[1, 2, 10, 12]], np.float32)

    def load(color_type: str, width: int, height: int) -> dict[str, Any]:
        results = dict(
            img_prefix=str(tmp_path),
            img_info=dict(filename="rot.jpg", width=width, height=height),
            ann_info=dict(bboxes=boxes, labels=np.array([0])),
        )
        return LoadAnnotations()(LoadImageFromFile(color_type=color_type)(results))

    with caplog.at_level(logging.WARNING, logger="detforge"):
        # the file's stored size, turned upright by the decoder: not a wrong size
        out = load("color", 40, 20)
        assert out["img_shape"][:2] == (40, 20)
        np.testing.assert_array_equal(out["gt_bboxes"], boxes)
        # the displayed size, decoded upright: equal
        np.testing.assert_array_equal(load("color", 20, 40)["gt_bboxes"], boxes)
        assert not caplog.records
        # without the rotation (color_type='unchanged') the swap is a real mismatch
        load("unchanged", 20, 40)
    assert len(caplog.records) == 1 and "rot.jpg" in caplog.records[0].getMessage()


def test_voc_style_size_that_differs_from_the_image(tmp_path: Path) -> None:
    for sub in ("JPEGImages", "Annotations"):
        (tmp_path / sub).mkdir()
    write_image(tmp_path / "JPEGImages" / "a.jpg", 320, 240)
    objects = "".join(
        f"<object><name>cell</name><bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
        f"<xmax>{x2 + 1}</xmax><ymax>{y2 + 1}</ymax></bndbox></object>"
        for x1, y1, x2, y2 in BOXES
    )
    (tmp_path / "Annotations" / "a.xml").write_text(
        f"<annotation><size><width>640</width><height>480</height></size>{objects}</annotation>"
    )
    (tmp_path / "train.txt").write_text("a\n")
    ds = XMLDataset(
        ann_file=str(tmp_path / "train.txt"),
        img_prefix=str(tmp_path),
        classes=("cell",),
        pipeline=TRAIN_PIPELINE[:2],
    )
    np.testing.assert_allclose(ds[0]["gt_bboxes"], np.array(BOXES) / 2)
