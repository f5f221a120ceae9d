"""YOLO txt labels → COCO json: coco8/coco128 and a folder of bad labels."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from detforge.datasets.converters import yolo_to_coco
from detforge.datasets.converters.yolo import default_labels_dir, parse_yolo_line
from detforge.datasets.issues import DatasetError
from detforge.evaluation.class_names import COCO_CLASSES


@pytest.fixture
def names_file(tmp_path: Path) -> Path:
    path = tmp_path / "coco.names"
    path.write_text("\n".join(COCO_CLASSES) + "\n")
    return path


def _label_lines(folder: Path) -> int:
    return sum(
        1 for f in folder.glob("*.txt") for line in f.read_text().splitlines() if line.strip()
    )


def test_coco8_train(shared_data: Path, names_file: Path, tmp_path: Path) -> None:
    root = shared_data / "coco8" / "datasets" / "coco8"
    out = tmp_path / "coco8_train.json"
    result = yolo_to_coco(root / "images" / "train", names_file, out)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    assert len(coco.imgs) == 4
    assert len(coco.anns) == _label_lines(root / "labels" / "train") == 13
    assert result.issues.count() == 0 and result.notes == []
    # 000000000009.jpg is 640x480; its first line: 45 0.479492 0.688771 0.955609 0.5955
    img = coco.imgs[1]
    assert (img["file_name"], img["width"], img["height"]) == ("000000000009.jpg", 640, 480)
    ann = coco.anns[1]
    assert ann["category_id"] == 46 and coco.cats[46]["name"] == COCO_CLASSES[45] == "bowl"
    x = (0.479492 - 0.955609 / 2) * 640  # 1.08
    y = (0.688771 - 0.5955 / 2) * 480  # 187.69008
    w, h = 0.955609 * 640, 0.5955 * 480  # 611.58976, 285.84
    assert ann["bbox"] == pytest.approx([x, y, w, h], abs=1e-9)
    assert ann["bbox"] == pytest.approx([1.08, 187.69008, 611.58976, 285.84], abs=1e-9)
    assert ann["area"] == pytest.approx(611.58976 * 285.84)
    assert ann["iscrowd"] == 0 and "segmentation" not in ann


def test_coco128_orphan_labels_are_reported(shared_data: Path, names_file: Path) -> None:
    root = shared_data / "coco128" / "datasets" / "coco128"
    result = yolo_to_coco(root / "images" / "train2017", names_file)
    # 941 label lines, 12 of them in two label files whose images are not in the folder
    assert _label_lines(root / "labels" / "train2017") == 941
    assert result.num_images == 128 and result.num_annotations == 929
    assert result.issues.kinds == {
        "label files without an image": ["000000000656.txt", "000000000659.txt"]
    }
    assert result.notes == ["2 images have no label file (kept as images without objects)"]


def test_malformed_labels(tmp_path: Path) -> None:
    images, labels = tmp_path / "data" / "images", tmp_path / "data" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    cv2.imwrite(str(images / "a.png"), np.zeros((50, 100, 3), np.uint8))
    cv2.imwrite(str(images / "b.png"), np.zeros((10, 10, 3), np.uint8))
    (images / "notes.txt").write_text("not an image, not a label")
    (labels / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.4\n"  # good
        "\n"
        "1 0.5 0.5 0.2\n"  # 4 numbers
        "x 0.5 0.5 0.2 0.4\n"  # not a number
        "1.5 0.5 0.5 0.2 0.4\n"  # class not an integer
        "2 0.5 0.5 0.2 0.4\n"  # class out of range
        "-1 0.5 0.5 0.2 0.4\n"  # class out of range
        "0 1.2 0.5 0.2 0.4\n"  # outside [0, 1]
        "0 0.5 0.5 0.0 0.4\n"  # zero width
        "1 0.1 0.2 0.5 0.2 0.3 0.6\n"  # polygon (3 points)
        "0 0.05 0.5 0.2 0.4\n"  # sticks out on the left: clipped
    )
    (labels / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    result = yolo_to_coco(images, ["a", "b"])
    kinds = result.issues.kinds
    assert kinds == {
        "malformed lines": ["a.txt:3", "a.txt:4", "a.txt:5"],
        "class ids out of range": ["a.txt:6", "a.txt:7"],
        "coordinates outside [0, 1]": ["a.txt:8"],
        "boxes with zero width or height": ["a.txt:9"],
        "label files without an image": ["orphan.txt"],
    }
    summary = result.issues.summary()
    assert (
        summary is not None and "dropped 3 malformed lines (a.txt:3, a.txt:4, a.txt:5)" in summary
    )
    box, poly, clipped = result.data["annotations"]
    assert (box["category_id"], box["bbox"], box["area"]) == (1, [40.0, 15.0, 20.0, 20.0], 400.0)
    assert poly["category_id"] == 2
    assert poly["segmentation"] == [[10.0, 10.0, 50.0, 10.0, 30.0, 30.0]]
    assert poly["bbox"] == pytest.approx([10.0, 10.0, 40.0, 20.0])
    assert poly["area"] == pytest.approx(400.0)  # triangle, base 40, height 20
    assert clipped["bbox"] == pytest.approx([0.0, 15.0, 15.0, 20.0])
    assert result.notes == ["1 images have no label file (kept as images without objects)"]
    with pytest.raises(DatasetError, match=r"malformed lines in a.txt:3"):
        yolo_to_coco(images, ["a", "b"], strict=True)


def test_parse_line_and_labels_dir() -> None:
    assert parse_yolo_line("0 0 0 1 1", 1) == (0, [0.0, 0.0, 1.0, 1.0])
    assert parse_yolo_line("0 0.1 0.1 0.2 0.2 0.3", 1) == "malformed lines"
    assert parse_yolo_line("0 nan 0.1 0.2 0.2", 1) == "malformed lines"
    assert default_labels_dir("a/images/b/images/train") == Path("a/images/b/labels/train")
    assert default_labels_dir("flat") == Path("flat")


def test_yolo_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        yolo_to_coco(tmp_path / "images", ["a"])
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="label folder not found"):
        yolo_to_coco(tmp_path / "images", ["a"])
    with pytest.raises(DatasetError, match="no image files"):
        yolo_to_coco(tmp_path / "images", ["a"], labels_dir=tmp_path)
