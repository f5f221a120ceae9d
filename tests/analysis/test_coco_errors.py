"""COCO error breakdown on a hand-made three-category case with hand-computed APs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.coco_errors import ERROR_TYPES, analyze_results, breakdown_aps


def _write(tmp_path: Path) -> tuple[Path, Path]:
    cats = [
        dict(id=1, name="cat", supercategory="animal"),
        dict(id=2, name="dog", supercategory="animal"),
        dict(id=3, name="car", supercategory="vehicle"),
    ]
    boxes = {1: [0, 0, 20, 20], 2: [50, 50, 20, 20], 3: [0, 50, 30, 30]}
    anns = [
        dict(id=c, image_id=1, category_id=c, bbox=b, area=b[2] * b[3], iscrowd=0)
        for c, b in boxes.items()
    ]
    gt = dict(images=[dict(id=1, width=100, height=100, file_name="a.jpg")],
              annotations=anns, categories=cats)  # fmt: skip
    dets = [
        (2, boxes[1], 0.9),  # a dog on the cat: confusion within the supercategory
        (2, boxes[2], 0.8),
        (1, boxes[3], 0.9),  # a cat on the car: confusion with another supercategory
        (1, boxes[1], 0.8),
        (3, [80, 0, 10, 10], 0.95),  # a car on background
        (3, [15, 50, 30, 30], 0.7),  # the car, IoU 450 / 1350 = 0.33
    ]
    res = [dict(image_id=1, category_id=c, bbox=b, score=s) for c, b, s in dets]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    return tmp_path / "gt.json", tmp_path / "res.json"


def test_breakdown_equals_the_hand_computation(tmp_path: Path) -> None:
    ann, res = _write(tmp_path)
    out = tmp_path / "out"
    aps = analyze_results(res, ann, out_dir=out, extraplots=True)["bbox"]
    # each category: one FP above one TP -> precision 0.5 at every recall, unless forgiven
    expected = {
        "cat": [0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0],  # its FP is forgiven only by Oth
        "dog": [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0],  # its FP is on a cat: forgiven by Sim
        "car": [0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0],  # IoU 0.33 counts from Loc; BG drops the FP
    }
    for name, values in expected.items():
        assert [aps[name]["allarea"][t] for t in ERROR_TYPES] == pytest.approx(values)
    columns = np.array(list(expected.values())).mean(axis=0)
    assert [aps["allclass"]["allarea"][t] for t in ERROR_TYPES] == pytest.approx(columns)
    # every box is small (< 32²): small equals allarea, medium and large have no GT
    assert aps["allclass"]["small"] == pytest.approx(aps["allclass"]["allarea"])
    assert all(math.isnan(v) for v in aps["allclass"]["large"].values())

    files = {p.name for p in (out / "bbox").iterdir()}
    for name in ("allclass", "cat", "dog", "car"):
        for area in ("allarea", "small", "medium", "large"):
            assert f"bbox-{name}-{area}.png" in files
        assert f"bbox-{name}-ap bar plot.png" in files
    assert {"number of annotations per area group.png",
            "gt annotation areas histogram plot.png"} <= files  # fmt: skip
    with open(out / "bbox" / "ap_breakdown.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["category", "area", *ERROR_TYPES]
    assert ["dog", "allarea", *["0.500000"] * 3, *["1.000000"] * 4] in rows
    assert ["car", "large", "", "", "", "", "", "", ""] in rows


def test_bad_inputs_name_the_culprit(tmp_path: Path) -> None:
    ann, res = _write(tmp_path)
    with pytest.raises(ValueError, match="no 'segmentation'"):
        analyze_results(res, ann, res_types=["segm"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="unknown result types"):
        analyze_results(res, ann, res_types=["keypoints"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="3 numbers"):
        analyze_results(res, ann, out_dir=tmp_path / "o", areas=[1, 2])
    other = tmp_path / "other.json"
    other.write_text(json.dumps([dict(image_id=7, category_id=9, bbox=[0, 0, 1, 1], score=1)]))
    with pytest.raises(ValueError, match=r"image ids \[7\] and category ids \[9\]"):
        analyze_results(other, ann, out_dir=tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        analyze_results(res, tmp_path / "missing.json", out_dir=tmp_path / "o")


def test_breakdown_aps_skips_categories_without_gt() -> None:
    ps = np.zeros((7, 101, 2, 4))
    ps[:, :, 0] = 0.8
    valid = np.array([[True, True, False, False], [False, False, False, False]])
    curves, aps = breakdown_aps(ps, valid)
    assert aps[:, 0] == pytest.approx([0.8] * 7)  # category 1 (no GT) does not pull it down
    assert np.isnan(aps[:, 2]).all() and (curves[:, :, 2] == 0).all()
