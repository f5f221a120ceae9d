"""VOC-style XML → COCO: BCCD against XMLDataset, the VOC devkit layout, the v2 value rules.

The ±1 note: the XML holds 1-based inclusive pixel boxes. Like MMDetection v2, the converter
subtracts 1 from every corner and writes ``bbox = [x1 - 1, y1 - 1, x2 - x1, y2 - y1]``, so
``CocoDataset`` (``[x, y, x + w, y + h]``) loads exactly ``XMLDataset``'s boxes (XML − 1); no
offset remains between the two loaders. The json's ``w``/``h`` are one less than the VOC pixel
count (``x2 - x1 + 1``), the legacy convention VOC evaluation compensates for.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from detforge.datasets.converters import middle_to_coco, voc_devkit_to_coco, xml_to_coco
from detforge.datasets.issues import DatasetError
from detforge.evaluation.class_names import VOC_CLASSES

BCCD_CLASSES = ("RBC", "WBC", "Platelets")


@pytest.fixture(scope="module")
def bccd(shared_data: Path) -> Path:
    root = shared_data / "bccd" / "BCCD"
    if not root.is_dir():
        pytest.skip(f"BCCD not found at {root}")
    return root


def _load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_bccd_train_split(bccd: Path, tmp_path: Path) -> None:
    out = tmp_path / "bccd_train.json"
    result = xml_to_coco(bccd, "ImageSets/Main/train.txt", BCCD_CLASSES, out)
    assert result.out_file == out
    coco = _load(out)
    assert len(coco.imgs) == 205
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(BCCD_CLASSES)
    assert coco.getCatIds() == [1, 2, 3]
    # train holds one of the two zero-size boxes (BloodImage_00343)
    assert result.issues.kinds == {"boxes with zero or negative size": ["BloodImage_00343.xml"]}
    # XML of BloodImage_00001, first object: WBC 68 315 286 480 (1-based, inclusive)
    img = next(i for i in coco.imgs.values() if i["file_name"] == "JPEGImages/BloodImage_00001.jpg")
    assert (img["width"], img["height"]) == (640, 480)
    first = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))[0]
    assert first["bbox"] == [67, 314, 218, 165]
    assert first["area"] == 218 * 165
    assert first["segmentation"] == [[67, 314, 67, 479, 285, 479, 285, 314]]
    assert (first["category_id"], first["iscrowd"]) == (2, 0)  # WBC


def test_bccd_trainval_drops_both_zero_size_boxes(bccd: Path) -> None:
    result = xml_to_coco(bccd, bccd / "ImageSets/Main/trainval.txt", BCCD_CLASSES)
    assert result.num_images == 292
    assert result.issues.summary() == (
        f"xml({bccd / 'ImageSets/Main/trainval.txt'}): dropped 2 boxes with zero or negative "
        "size (BloodImage_00338.xml, BloodImage_00343.xml)"
    )
    ids = [a["id"] for a in result.data["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    with pytest.raises(DatasetError, match=r"BloodImage_00338\.xml"):
        xml_to_coco(bccd, "ImageSets/Main/trainval.txt", BCCD_CLASSES, strict=True)


def test_bccd_coco_boxes_equal_xmldataset_boxes(bccd: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("detforge.datasets")
    out = tmp_path / "train.json"
    xml_to_coco(bccd, "ImageSets/Main/train.txt", BCCD_CLASSES, out)
    common = dict(pipeline=[], classes=BCCD_CLASSES, img_prefix=str(bccd) + "/", test_mode=True)
    xml = datasets.XMLDataset(ann_file=str(bccd / "ImageSets/Main/train.txt"), **common)
    coco = datasets.CocoDataset(ann_file=str(out), **common)
    assert len(xml) == len(coco) == 205
    by_name = {info["filename"]: i for i, info in enumerate(coco.data_infos)}
    n_boxes = 0
    for i, info in enumerate(xml.data_infos):
        a, b = xml.get_ann_info(i), coco.get_ann_info(by_name[info["filename"]])
        np.testing.assert_array_equal(a["bboxes"], b["bboxes"])
        np.testing.assert_array_equal(a["labels"], b["labels"])
        np.testing.assert_array_equal(a["bboxes_ignore"], b["bboxes_ignore"])
        n_boxes += len(a["bboxes"])
    assert n_boxes == len(coco.coco.anns)


def test_voc_devkit_to_coco(mmdet_test_data: Path, tmp_path: Path) -> None:
    devkit = mmdet_test_data / "VOCdevkit"
    results = voc_devkit_to_coco(devkit, tmp_path, out_format="coco")
    names = [r.out_file.name for r in results if r.out_file]
    # the one-image devkits only have trainval and test lists; v2 skips the missing splits
    assert names == [
        "voc07_trainval.json",
        "voc07_test.json",
        "voc12_trainval.json",
        "voc12_test.json",
        "voc0712_trainval.json",
    ]
    coco = _load(tmp_path / "voc07_trainval.json")
    assert coco.dataset["type"] == "instance"
    assert coco.imgs[1] == dict(
        id=1, file_name="VOC2007/JPEGImages/000001.jpg", width=353, height=500
    )
    assert [c["name"] for c in coco.dataset["categories"]] == list(VOC_CLASSES)
    dog, person = coco.loadAnns([1, 2])
    # XML: dog 48 240 195 371, person 8 12 352 498
    assert (dog["category_id"], dog["bbox"], dog["area"]) == (12, [47, 239, 147, 131], 19257)
    assert (person["category_id"], person["bbox"]) == (15, [7, 11, 344, 486])
    both = _load(tmp_path / "voc0712_trainval.json")
    assert [i["file_name"] for i in both.dataset["images"]] == [
        "VOC2007/JPEGImages/000001.jpg",
        "VOC2012/JPEGImages/000001.jpg",
    ]
    assert len(both.anns) == 3


def test_voc_devkit_to_pkl(mmdet_test_data: Path, tmp_path: Path) -> None:
    results = voc_devkit_to_coco(mmdet_test_data / "VOCdevkit", tmp_path)
    assert results[0].out_file == tmp_path / "voc07_trainval.pkl"
    with open(tmp_path / "voc07_trainval.pkl", "rb") as handle:
        records = pickle.load(handle)
    assert records[0]["filename"] == "VOC2007/JPEGImages/000001.jpg"
    ann = records[0]["ann"]
    assert ann["bboxes"].dtype == np.float32 and ann["labels"].dtype == np.int64
    np.testing.assert_array_equal(ann["bboxes"], [[47, 239, 194, 370], [7, 11, 351, 497]])
    np.testing.assert_array_equal(ann["labels"], [11, 14])
    assert ann["bboxes_ignore"].shape == (0, 4)


def test_voc_devkit_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        voc_devkit_to_coco(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="neither a VOC2007 nor a VOC2012"):
        voc_devkit_to_coco(tmp_path)


def _write_xml(
    path: Path, objects: str, size: str = "<size><width>100</width><height>80</height></size>"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation>{size}{objects}</annotation>")


def _obj(name: str, box: tuple[object, ...], difficult: int = 0) -> str:
    keys = ("xmin", "ymin", "xmax", "ymax")
    coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(keys, box, strict=True))
    return (
        f"<object><name>{name}</name><difficult>{difficult}</difficult>"
        f"<bndbox>{coords}</bndbox></object>"
    )


def test_xml_rules_difficult_unknown_and_bad_objects(tmp_path: Path) -> None:
    objects = (
        _obj("cat", (11, 21, 30.7, 40))  # float text: int(float()) as v2's XMLDataset
        + _obj("cat", (1, 1, 10, 10), difficult=1)
        + _obj("zebra", (1, 1, 10, 10))
        + _obj("cat", (5, 5, 5, 9))
        + _obj("cat", (1, "x", 10, 10))
    )
    _write_xml(tmp_path / "Annotations" / "a.xml", objects)
    _write_xml(tmp_path / "Annotations" / "b.xml", "", size="")  # no size and no image
    (tmp_path / "ids.txt").write_text("a\nb\nc\n")
    result = xml_to_coco(tmp_path, "ids.txt", ["cat"])
    assert result.issues.kinds == {
        "objects of classes not in classes": ["a.xml"],
        "boxes with zero or negative size": ["a.xml"],
        "objects with a missing or unreadable bndbox": ["a.xml"],
        "images without a size that cannot be opened": ["b.xml"],
        "images whose XML cannot be read": [str(tmp_path / "Annotations" / "c.xml")],
    }
    anns = result.data["annotations"]
    assert [(a["bbox"], a["iscrowd"]) for a in anns] == [([10, 20, 19, 19], 0), ([0, 0, 9, 9], 1)]
    json.dumps(result.data)  # plain Python types only


def test_middle_to_coco_ignored_boxes_are_crowd() -> None:
    rec = dict(
        filename="a.jpg",
        width=50,
        height=40,
        ann=dict(
            bboxes=np.array([[0.0, 1, 5, 7]], np.float32),
            labels=np.array([1]),
            bboxes_ignore=np.array([[2.0, 2, 4, 4]], np.float32),
            labels_ignore=np.array([0]),
        ),
    )
    coco = middle_to_coco([rec], ["a", "b"])
    assert [(a["category_id"], a["bbox"], a["iscrowd"]) for a in coco["annotations"]] == [
        (2, [0, 1, 5, 6], 0),
        (1, [2, 2, 2, 2], 1),
    ]
