"""VIA polygon json (balloon tutorial format) → COCO with polygons."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from detforge.datasets.converters import via_to_coco
from detforge.datasets.issues import DatasetError


def _poly(xs: list[int], ys: list[int]) -> dict[str, object]:
    shape = {"name": "polygon", "all_points_x": xs, "all_points_y": ys}
    return {"shape_attributes": shape, "region_attributes": {}}


def write_via(root: Path) -> Path:
    """VIA 1.x export as in balloon's via_region_data.json (regions keyed '0', '1', ...)."""
    root.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "one.jpg"), np.zeros((100, 120, 3), np.uint8))
    cv2.imwrite(str(root / "two.jpg"), np.zeros((50, 60, 3), np.uint8))
    data = {
        "one.jpg1234": {
            "fileref": "",
            "size": 1234,
            "filename": "one.jpg",
            "base64_img_data": "",
            "file_attributes": {},
            "regions": {
                "0": _poly([10, 50, 30], [20, 25, 60]),
                "1": _poly([1, 2], [3, 4]),  # too few points
                "2": {
                    "shape_attributes": {"name": "circle", "cx": 5, "cy": 5, "r": 2},
                    "region_attributes": {},
                },
            },
        },
        "two.jpg99": {
            "filename": "two.jpg",
            "regions": {
                "0": {
                    "shape_attributes": {"name": "rect", "x": 4, "y": 6, "width": 10, "height": 5},
                    "region_attributes": {},
                },
                "1": _poly([7, 7, 7], [1, 9, 4]),  # zero width
            },
        },
        "missing.jpg5": {"filename": "missing.jpg", "regions": {}},
    }
    path = root / "via_region_data.json"
    path.write_text(json.dumps(data))
    return path


def test_via_to_coco_values(tmp_path: Path) -> None:
    ann_file = write_via(tmp_path / "train")
    out = tmp_path / "annotation_coco.json"
    result = via_to_coco(ann_file, out)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    assert coco.dataset["categories"] == [dict(id=1, name="balloon", supercategory="none")]
    assert coco.dataset["images"] == [
        dict(id=1, file_name="one.jpg", width=120, height=100),
        dict(id=2, file_name="two.jpg", width=60, height=50),
    ]
    poly, rect = coco.dataset["annotations"]
    # polygon: points + 0.5; bbox [min x, min y, max x - min x, max y - min y]; area = box area
    assert poly == dict(
        id=1,
        image_id=1,
        category_id=1,
        bbox=[10, 20, 40, 40],
        area=1600,
        iscrowd=0,
        segmentation=[[10.5, 20.5, 50.5, 25.5, 30.5, 60.5]],
    )
    assert rect["bbox"] == [4, 6, 10, 5] and rect["area"] == 50
    assert rect["segmentation"] == [[4, 6, 14, 6, 14, 11, 4, 11]]
    assert coco.annToMask(coco.anns[1]).sum() > 0  # a valid polygon for pycocotools
    assert result.issues.kinds == {
        "polygons with fewer than 3 points": ["one.jpg"],
        "regions of unsupported shape 'circle'": ["one.jpg"],
        "regions with zero width or height": ["two.jpg"],
        "images that cannot be opened": ["missing.jpg"],
    }


def test_via2_project_with_several_classes(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    cv2.imwrite(str(root / "a.png"), np.zeros((40, 40, 3), np.uint8))
    cat = _poly([1, 9, 5], [1, 1, 8])
    cat["region_attributes"] = {"kind": "cat"}
    dog = _poly([2, 9, 5], [2, 2, 9])
    dog["region_attributes"] = {"kind": {"dog": True, "cat": False}}
    unknown = _poly([2, 9, 5], [2, 2, 9])
    unknown["region_attributes"] = {"kind": "cow"}
    project = {"_via_settings": {}, "_via_img_metadata": {
        "a.png1": {"filename": "a.png", "regions": [cat, dog, unknown]},
    }}  # fmt: skip
    ann_file = tmp_path / "project.json"
    ann_file.write_text(json.dumps(project))
    with pytest.raises(DatasetError, match="class_attribute"):
        via_to_coco(ann_file, img_dir=root, classes=["cat", "dog"])
    result = via_to_coco(ann_file, img_dir=root, classes=["cat", "dog"], class_attribute="kind")
    assert [a["category_id"] for a in result.data["annotations"]] == [1, 2]
    assert result.issues.kinds == {"regions of unknown classes": ["a.png"]}


def test_via_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="VIA annotation file not found"):
        via_to_coco(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"bad\.json: not a json file"):
        via_to_coco(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DatasetError, match="expected a VIA export"):
        via_to_coco(tmp_path / "list.json")
