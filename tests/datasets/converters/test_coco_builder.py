"""The shared COCO helpers of the converters: builder, validation, class files, image sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.datasets.converters import CocoBuilder, read_class_names, validate_coco, write_json
from detforge.datasets.converters._coco import image_size
from detforge.datasets.issues import DatasetError
from detforge.utils.image import ImageLoadError


def test_builder_ids_start_at_one_and_area_defaults_to_box_area() -> None:
    builder = CocoBuilder(["a", "b", "c"])
    first = builder.add_image("x.jpg", 10, 20)
    second = builder.add_image("y.jpg", 30, 40)
    ann = builder.add_annotation(second, builder.category_id("c"), [1.5, 2, 3, 4])
    coco = builder.to_dict()
    assert (first, second, ann) == (1, 2, 1)
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert coco["annotations"][0] == dict(
        id=1, image_id=2, category_id=3, bbox=[1.5, 2, 3, 4], area=12.0, iscrowd=0
    )
    validate_coco(coco)


def test_builder_rejects_bad_input() -> None:
    with pytest.raises(DatasetError, match="listed twice"):
        CocoBuilder(["a", "a"])
    builder = CocoBuilder(["a"])
    builder.add_image("x.jpg", 10, 20)
    with pytest.raises(DatasetError, match=r"'x\.jpg' is listed twice"):
        builder.add_image("x.jpg", 10, 20)
    with pytest.raises(DatasetError, match="invalid bbox"):
        builder.add_annotation(1, 1, [0, 0, 0, 5])
    with pytest.raises(DatasetError, match="invalid bbox"):
        builder.add_annotation(1, 1, [0, 0, float("nan"), 5])
    with pytest.raises(KeyError, match="unknown class 'b'"):
        builder.category_id("b")


def test_validate_coco_lists_problems() -> None:
    coco = dict(
        images=[dict(id=1, file_name="a.jpg", width=5, height=5)],
        annotations=[
            dict(id=1, image_id=2, category_id=1, bbox=[0, 0, 1, 1], area=1, iscrowd=0),
            dict(id=1, image_id=1, category_id=9, bbox=[0, 0, -1, 1], area=1, iscrowd=2),
        ],
        categories=[dict(id=1, name="a")],
    )
    with pytest.raises(DatasetError) as err:
        validate_coco(coco, "x.json")
    text = str(err.value)
    for part in (
        "x.json",
        "duplicate annotation id 1",
        "unknown image_id 2",
        "unknown category_id 9",
        "bad bbox [0, 0, -1, 1]",
    ):
        assert part in text


def test_write_json_validates_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "a.json"
    good = CocoBuilder(["a"]).to_dict()
    write_json(good, out)
    assert json.loads(out.read_text())["categories"][0]["name"] == "a"
    with pytest.raises(DatasetError):
        write_json(dict(images=[], categories=[]), out)
    assert json.loads(out.read_text()) == good  # the old file is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.json"]


def test_read_class_names(tmp_path: Path) -> None:
    txt = tmp_path / "classes.txt"
    txt.write_text("cat\n\n dog \n")
    assert read_class_names(txt) == ("cat", "dog")
    yml = tmp_path / "data.yaml"
    yml.write_text("names:\n  0: person\n  1: bicycle\n")
    assert read_class_names(yml) == ("person", "bicycle")
    yml.write_text("names: [a, b]\n")
    assert read_class_names(str(yml)) == ("a", "b")
    yml.write_text("names:\n  0: a\n  2: b\n")
    with pytest.raises(DatasetError, match=r"keys must be 0 \.\. 1"):
        read_class_names(yml)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DatasetError, match="no class names"):
        read_class_names(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        read_class_names(tmp_path / "missing.txt")


def test_image_size_applies_exif_rotation(tmp_path: Path) -> None:
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    Image.fromarray(np.zeros((20, 50, 3), np.uint8)).save(path, exif=exif)
    assert image_size(path) == (20, 50)
    assert image_size(path, decode=True) == (20, 50)  # what the loader sees
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ImageLoadError, match=r"bad\.jpg"):
        image_size(tmp_path / "bad.jpg")
