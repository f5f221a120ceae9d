"""XML datasets on real data: BCCD (Pascal-VOC style, no VOC year) and MMDetection's VOC devkit."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.datasets import DatasetError, VOCDataset, XMLDataset, build_dataset

BCCD_CLASSES = ("RBC", "WBC", "Platelets")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def bccd(shared_data: Path) -> Path:
    return shared_data / "bccd" / "BCCD"


def bccd_dataset(root: Path, split: str = "train", **kwargs) -> XMLDataset:
    args = dict(pipeline=[], classes=BCCD_CLASSES, img_prefix=str(root))
    return XMLDataset(ann_file=str(root / "ImageSets" / "Main" / f"{split}.txt"), **args | kwargs)


def test_bccd_train_split_loads_205_images(bccd: Path) -> None:
    ds = bccd_dataset(bccd)
    assert len(ds) == 205
    # of BCCD's two zero-size boxes only BloodImage_00343's is in the train split
    assert ds.issues.kinds == {"boxes with zero or negative size": ["BloodImage_00343.xml"]}
    for i in range(len(ds)):
        ann = ds.get_ann_info(i)
        boxes = ann["bboxes"]
        assert boxes.dtype == np.float32 and ann["labels"].dtype == np.int64
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert ((ann["labels"] >= 0) & (ann["labels"] < 3)).all()


def test_bccd_zero_size_boxes_are_dropped_and_reported_in_one_line(
    bccd: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="detforge"):
        ds = bccd_dataset(bccd, split="trainval")
    assert len(ds) == 292
    places = ds.issues.kinds["boxes with zero or negative size"]
    assert places == ["BloodImage_00338.xml", "BloodImage_00343.xml"]
    summary = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(summary) == 1
    assert (
        "2 boxes with zero or negative size (BloodImage_00338.xml, BloodImage_00343.xml)"
        in (summary[0])
    )
    idx = [info["id"] for info in ds.data_infos].index("BloodImage_00338")
    # the degenerate box [504, 337, 504, 337] is gone, the other objects stay
    assert not ((ds.get_ann_info(idx)["bboxes"] == [503, 336, 503, 336]).all(axis=1)).any()


def test_bccd_strict_mode_names_the_file(bccd: Path) -> None:
    with pytest.raises(DatasetError, match=r"BloodImage_00343\.xml"):
        bccd_dataset(bccd, strict=True)


def test_bccd_boxes_are_shifted_by_one(bccd: Path) -> None:
    ds = bccd_dataset(bccd, split="trainval")
    idx = [info["id"] for info in ds.data_infos].index("BloodImage_00338")
    # first object of BloodImage_00338.xml: RBC xmin=453 ymin=81 xmax=555 ymax=182
    np.testing.assert_array_equal(ds.get_ann_info(idx)["bboxes"][0], [452, 80, 554, 181])
    assert ds.get_ann_info(idx)["labels"][0] == 0
    assert ds.data_infos[idx]["filename"] == "JPEGImages/BloodImage_00338.jpg"
    assert ds.flag[idx] == 1  # 640x480 is landscape


def test_voc_dataset_refuses_a_path_without_a_year(bccd: Path) -> None:
    with pytest.raises(DatasetError, match="cannot infer the VOC year") as info:
        VOCDataset(
            ann_file=str(bccd / "ImageSets/Main/train.txt"), pipeline=[], img_prefix=str(bccd)
        )
    assert "XMLDataset" in str(info.value)


def test_xml_dataset_needs_classes(bccd: Path) -> None:
    with pytest.raises(DatasetError, match="classes"):
        XMLDataset(ann_file=str(bccd / "ImageSets/Main/train.txt"), pipeline=[])


def test_voc2007_devkit_and_evaluation(mmdet_test_data: Path) -> None:
    root = mmdet_test_data / "VOCdevkit" / "VOC2007"
    ds = VOCDataset(
        ann_file=str(root / "ImageSets/Main/test.txt"),
        pipeline=[],
        img_prefix=str(root),
        test_mode=True,
    )
    assert ds.year == 2007 and len(ds) == 1
    ann = ds.get_ann_info(0)
    # 000001.xml: dog [48,240,195,371], person [8,12,352,498], minus 1
    np.testing.assert_array_equal(ann["bboxes"], [[47, 239, 194, 370], [7, 11, 351, 497]])
    assert [ds.CLASSES[i] for i in ann["labels"]] == ["dog", "person"]
    perfect = [[np.zeros((0, 5), np.float32) for _ in ds.CLASSES]]
    for box, label in zip(ann["bboxes"], ann["labels"], strict=True):
        perfect[0][label] = np.array([[*box, 1.0]], dtype=np.float32)
    result = ds.evaluate(perfect)
    assert list(result) == ["mAP", "AP50"]
    assert result["mAP"] == pytest.approx(1.0)


def test_bccd_with_the_voc_training_pipeline(bccd: Path) -> None:
    base = Config.fromfile(CONFIGS / "_base_/datasets/voc0712.py")
    cfg = dict(
        type="XMLDataset",
        classes=BCCD_CLASSES,
        ann_file=str(bccd / "ImageSets/Main/train.txt"),
        img_prefix=str(bccd),
        pipeline=base.to_dict()["train_pipeline"],
    )
    ds = build_dataset(cfg)
    np.random.seed(0)
    sample = ds[0]
    img = sample["img"]
    assert isinstance(img, torch.Tensor) and img.dtype == torch.float32
    # voc0712 resizes to (1000, 600) keeping the ratio: 640x480 -> 800x600, padded to 608x800
    assert tuple(img.shape) == (3, 608, 800)
    assert sample["gt_bboxes"].shape[1] == 4 and sample["gt_bboxes"].dtype == torch.float32
    assert len(sample["gt_labels"]) == len(sample["gt_bboxes"])
    meta = sample["img_metas"]
    assert meta["ori_shape"] == (480, 640, 3) and meta["img_shape"] == (600, 800, 3)
    assert meta["pad_shape"] == (608, 800, 3)


def test_bccd_class_name_typo_is_an_error_listing_the_names(bccd: Path) -> None:
    # before: every 'Platelets' object was dropped without a word (292 boxes of trainval)
    with pytest.raises(DatasetError, match=r"classes \['Platelet'\] match no object") as info:
        bccd_dataset(bccd, split="trainval", classes=("RBC", "WBC", "Platelet"))
    message = str(info.value)
    assert "trainval.txt" in message and "did you mean 'Platelets'?" in message
    assert "the names there are: ['Platelets', 'RBC', 'WBC']" in message


def test_bccd_class_subset_counts_the_skipped_objects(
    bccd: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="detforge"):
        ds = bccd_dataset(bccd, classes=("RBC", "WBC"))
    assert len(ds) == 205
    assert any(
        "skipped 209 objects" in r.getMessage() and "'Platelets' (209)" in r.getMessage()
        for r in caplog.records
    )


def write_voc(root: Path, size: str, objects: list[tuple[str, str]]) -> Path:
    """One 64x48 image ``a.jpg`` with ``<size>`` and (name, 'xmin ymin xmax ymax') objects."""
    for sub in ("JPEGImages", "Annotations"):
        (root / sub).mkdir(exist_ok=True)
    cv2.imwrite(str(root / "JPEGImages" / "a.jpg"), np.zeros((48, 64, 3), np.uint8))
    body = "".join(
        f"<object><name>{name}</name><bndbox>"
        + "".join(
            f"<{k}>{v}</{k}>"
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), coords.split(), strict=True)
        )
        + "</bndbox></object>"
        for name, coords in objects
    )
    (root / "Annotations" / "a.xml").write_text(f"<annotation>{size}{body}</annotation>")
    (root / "list.txt").write_text("a\n")
    return root / "list.txt"


def test_zero_size_in_xml_reads_the_image_and_is_counted(tmp_path: Path) -> None:
    size = "<size><width>0</width><height>0</height></size>"
    ann = write_voc(tmp_path, size, [("cell", "2 2 40 40")])
    ds = XMLDataset(ann_file=str(ann), img_prefix=str(tmp_path), classes=("cell",), pipeline=[])
    # before: the image was silently filtered out of training (0 < min_size)
    assert len(ds) == 1
    assert (ds.data_infos[0]["width"], ds.data_infos[0]["height"]) == (64, 48)
    assert ds.issues.kinds == {
        "XMLs with a zero or unreadable <size> (size read from the image)": ["a.xml"]
    }


def test_bad_coordinates_are_reported_by_their_real_reason(tmp_path: Path) -> None:
    objects = [
        ("cell", "2 2 40 40"),
        ("cell", "nan 2 40 40"),
        ("cell", "x 2 40 40"),
        ("cell", "5 5 5 30"),
    ]
    ann = write_voc(tmp_path, "", objects)
    ds = XMLDataset(ann_file=str(ann), img_prefix=str(tmp_path), classes=("cell",), pipeline=[])
    assert ds.issues.kinds == {
        "boxes with non-finite coordinates": ["a.xml"],
        "objects with unreadable coordinates": ["a.xml"],
        "boxes with zero or negative size": ["a.xml"],
    }
    np.testing.assert_array_equal(ds.get_ann_info(0)["bboxes"], [[1, 1, 39, 39]])
