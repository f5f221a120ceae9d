"""A folder of images → test-only COCO json."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from detforge.datasets.converters import images_to_coco
from detforge.datasets.issues import DatasetError


def make_folder(root: Path) -> Path:
    """Two good images (one in a subfolder), a .bmp, a broken file and a truncated JPEG."""
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "b.png"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(root / "sub" / "a.jpg"), np.full((12, 16, 3), 200, np.uint8))
    cv2.imwrite(str(root / "c.bmp"), np.zeros((5, 7, 3), np.uint8))
    (root / "broken.jpg").write_bytes(b"this is not an image")
    noisy = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", noisy)
    assert ok
    (root / "truncated.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    (root.parent / "classes.txt").write_text("cat\ndog\n")
    return root


def test_images_to_coco(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    out = tmp_path / "out" / "test.json"
    result = images_to_coco(root, tmp_path / "classes.txt", out, exclude_extensions=["BMP"])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    assert coco.dataset["images"] == [
        dict(id=1, file_name="b.png", width=40, height=30),
        dict(id=2, file_name="sub/a.jpg", width=16, height=12),
        dict(id=3, file_name="truncated.jpg", width=64, height=64),  # header is fine
    ]
    assert coco.dataset["annotations"] == []
    assert coco.dataset["categories"] == [
        dict(id=1, name="cat", supercategory="none"),
        dict(id=2, name="dog", supercategory="none"),
    ]
    assert result.issues.summary() == (
        f"images({root}): dropped 1 files that are not readable images (broken.jpg)"
    )


def test_check_images_finds_truncated_files(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    result = images_to_coco(root, ["cat"], exclude_extensions=[".bmp"], check_images=True)
    assert [i["file_name"] for i in result.data["images"]] == ["b.png", "sub/a.jpg"]
    assert result.issues.kinds["files that are not readable images"] == [
        "broken.jpg",
        "truncated.jpg",
    ]


def test_images_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        images_to_coco(tmp_path / "missing", ["cat"])
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no readable images"):
        images_to_coco(tmp_path, ["cat"])
    with pytest.raises(DatasetError, match=r"files that are not readable images in x\.txt"):
        images_to_coco(tmp_path, ["cat"], strict=True)
