"""Cityscapes → COCO, with a stand-in for ``cityscapesscripts.helpers.labels`` when it is absent."""

from __future__ import annotations

import sys
import types
from collections import namedtuple
from pathlib import Path

import cv2
import numpy as np
import pytest

from detforge.datasets.converters import cityscapes_available, cityscapes_to_coco
from detforge.datasets.issues import DatasetError

Label = namedtuple("Label", "name id hasInstances ignoreInEval")
LABELS = [
    Label("road", 7, False, False),
    Label("person", 24, True, False),
    Label("car", 26, True, False),
    Label("caravan", 29, True, True),
]


@pytest.fixture
def fake_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install a tiny ``cityscapesscripts.helpers.labels`` (real label ids, 4 labels)."""
    module = types.ModuleType("cityscapesscripts.helpers.labels")
    module.labels = LABELS  # type: ignore[attr-defined]
    module.id2label = {lab.id: lab for lab in LABELS}  # type: ignore[attr-defined]
    for name in ("cityscapesscripts", "cityscapesscripts.helpers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "cityscapesscripts.helpers.labels", module)


def _write_city(root: Path) -> None:
    img_dir = root / "leftImg8bit" / "val" / "ulm"
    gt_dir = root / "gtFine" / "val" / "ulm"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    inst = np.full((20, 30), 7, np.uint16)  # road (stuff)
    inst[2:6, 3:10] = 24000  # person instance 0
    inst[10:12, 0:4] = 26001  # car instance 1
    inst[15:18, 20:25] = 26  # car crowd region
    inst[0:2, 25:30] = 29000  # caravan: ignored in evaluation
    for name in ("ulm_000000_000019", "ulm_000001_000019"):
        cv2.imwrite(str(img_dir / f"{name}_leftImg8bit.png"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(gt_dir / "ulm_000000_000019_gtFine_instanceIds.png"), inst)
    cv2.imwrite(str(img_dir / "stray.png"), np.zeros((2, 2, 3), np.uint8))


@pytest.mark.usefixtures("fake_labels")
def test_cityscapes_to_coco(tmp_path: Path) -> None:
    _write_city(tmp_path)
    (result,) = cityscapes_to_coco(tmp_path, tmp_path / "out")
    assert result.out_file == tmp_path / "out" / "instancesonly_filtered_gtFine_val.json"
    coco = result.data
    assert coco["categories"] == [dict(id=24, name="person"), dict(id=26, name="car")]
    assert coco["images"] == [
        dict(
            file_name="ulm/ulm_000000_000019_leftImg8bit.png",
            height=20,
            width=30,
            segm_file="ulm/ulm_000000_000019_gtFine_labelIds.png",
            id=1,
        )
    ]
    anns = coco["annotations"]
    assert [(a["category_id"], a["iscrowd"], a["bbox"], a["area"]) for a in anns] == [
        (26, 1, [20.0, 15.0, 5.0, 3.0], 15.0),
        (24, 0, [3.0, 2.0, 7.0, 4.0], 28.0),
        (26, 0, [0.0, 10.0, 4.0, 2.0], 8.0),
    ]
    assert isinstance(anns[0]["segmentation"]["counts"], str)
    assert result.issues.kinds == {
        "images not named *_leftImg8bit.png": ["stray.png"],
        "images whose instance map cannot be read": [
            str(tmp_path / "gtFine/val/ulm/ulm_000001_000019_gtFine_instanceIds.png")
        ],
    }


@pytest.mark.usefixtures("fake_labels")
def test_cityscapes_without_images(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no Cityscapes images"):
        cityscapes_to_coco(tmp_path)


def test_cityscapes_missing_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "cityscapesscripts", None)
    monkeypatch.delitem(sys.modules, "cityscapesscripts.helpers.labels", raising=False)
    assert not cityscapes_available()
    with pytest.raises(ImportError, match=r"pip install cityscapesscripts"):
        cityscapes_to_coco(tmp_path)
