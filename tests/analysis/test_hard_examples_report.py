"""Drawing, HTML ordering and CSV of the hard-example report on synthetic images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from detforge.analysis.hard_examples import match_image
from detforge.analysis.hard_examples_report import COLORS, draw_match, write_report
from detforge.utils.image import imread, imwrite

GT = np.array([[10, 10, 60, 60], [100, 10, 150, 60], [10, 100, 60, 150]], np.float32)


def _bgr(key: str) -> list[int]:
    r, g, b = COLORS[key]
    return [b, g, r]


def test_each_category_has_its_colour() -> None:
    result = [
        np.array(
            [[10, 10, 60, 60, 0.9], [100, 10, 130, 60, 0.8], [150, 150, 190, 190, 0.7]],
            np.float32,
        )
    ]
    m = match_image(GT, np.zeros(3, np.int64), result, pos_iou_thr=0.8)  # IoU 0.6 -> poor
    assert (m.tp, m.poor_loc, m.fp, m.missed) == (1, 1, 1, 1)
    img = np.full((200, 200, 3), 128, np.uint8)
    out = draw_match(img, m, ["cell"])
    assert out.shape[0] > 200 and out.shape[1] == 200  # counting strip below
    assert out[40, 10].tolist() == _bgr("tp")  # left edge of the tp box
    assert out[40, 130].tolist() == _bgr("poor_loc")  # right edge of the poor detection
    assert out[40, 150].tolist() == _bgr("poor_gt")  # right edge of its GT
    assert out[130, 60].tolist() == _bgr("missed")  # right edge of the missed GT
    assert out[175, 190].tolist() == _bgr("fp")  # right edge of the false positive


def test_report_files(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        imwrite(np.full((80, 100, 3), 50 * i, np.uint8), path)
        paths.append(str(path))
    empty = [np.zeros((0, 5), np.float32)]
    gt, label = GT[:1] / 2, np.array([0])
    matches = [
        match_image(gt, label, [np.array([[5, 5, 30, 30, 0.9]], np.float32)]),  # clean
        match_image(gt, label, empty),  # missed: badness 1
        match_image(gt, label, [np.array([[60, 60, 70, 70, 0.9]], np.float32)]),  # fp + missed
    ]
    files = ["a/img0.png", "b/img1.png", "c/img1.png"]  # two images with the same base name
    out = write_report(files, matches, tmp_path / "out", ["cell"], image_paths=paths)
    with open(out["csv"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[1:] == [
        ["a/img0.png", "1", "1", "1", "0", "0", "0", "0"],
        ["b/img1.png", "1", "0", "0", "0", "1", "0", "1"],
        ["c/img1.png", "1", "1", "0", "1", "1", "0", "2"],
    ]
    assert sorted(p.name for p in out["images"].iterdir()) == ["img1.png", "img1_2.png"]
    assert imread(out["images"] / "img1_2.png")[66, 60].tolist() == _bgr("fp")
    page = out["html"].read_text()
    assert page.index("images/img1_2.png") < page.index("images/img1.png")
    assert "2 of 3 images" in page and "img0" not in page
