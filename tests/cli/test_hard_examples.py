"""``detforge hard-examples`` on crafted BCCD results, against hand-counted categories."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.results import build_test_dataset
from detforge.cli.main import main
from detforge.config import load_config
from detforge.utils.image import imread
from tests.analysis.bccd import dump, perfect_results, write_bccd_config

RBC, WBC, PLATELETS = 0, 1, 2


def _crafted(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
    config = write_bccd_config(tmp_path, shared_data)
    dataset = build_test_dataset(load_config(config).cfg)
    results = perfect_results(dataset)  # every GT found with score 0.9
    # 00007: a WBC on empty background (0.8) -> 1 FP; one at 0.2 is under the threshold 0.3
    results[0][WBC] = np.vstack([results[0][WBC], [[0, 0, 3, 3, 0.8], [5, 5, 9, 9, 0.2]]])
    # 00011: the platelet is missed
    results[1][PLATELETS] = np.zeros((0, 5), np.float32)
    # 00015: the WBC called an RBC -> 1 FP (wrong class) and the WBC missed
    results[2][RBC] = np.vstack([results[2][RBC], results[2][WBC]])
    results[2][WBC] = np.zeros((0, 5), np.float32)
    # 00016: the WBC [150, 117, 328, 278] moved 71 px right -> IoU 107 / 249 = 0.43;
    # a duplicate platelet scoring 0.5 -> 1 FP (duplicate)
    results[3][WBC] = results[3][WBC] + np.array([71, 0, 71, 0, 0], np.float32)
    results[3][PLATELETS] = np.vstack(
        [results[3][PLATELETS], results[3][PLATELETS] * [1, 1, 1, 1, 0.5 / 0.9]]
    )
    return config, dump(
        [[r.astype(np.float32) for r in res] for res in results], tmp_path / "r.pkl"
    )


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_hard_examples_counts_equal_the_hand_computation(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, pkl = _crafted(tmp_path, shared_data)
    out = tmp_path / "hard"
    assert main(["hard-examples", str(config), str(pkl), str(out), "--pos-iou-thr", "0.5"]) == 0
    rows = _rows(out / "summary.csv")
    assert rows == [
        ["file", "n_gt", "n_det", "tp", "fp", "missed", "poor_loc", "badness"],
        ["JPEGImages/BloodImage_00007.jpg", "18", "19", "18", "1", "0", "0", "1"],
        ["JPEGImages/BloodImage_00011.jpg", "19", "18", "18", "0", "1", "0", "1"],
        ["JPEGImages/BloodImage_00015.jpg", "16", "16", "15", "1", "1", "0", "2"],
        ["JPEGImages/BloodImage_00016.jpg", "13", "14", "12", "1", "0", "1", "1.5"],
    ]
    # one drawn image per hard case, and the index lists them worst first
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == [f"BloodImage_000{i}.jpg" for i in ("07", "11", "15", "16")]
    drawn = imread(out / "images" / "BloodImage_00015.jpg")
    assert drawn.shape[1] == 640 and drawn.shape[0] > 480  # the image plus the counting strip
    page = (out / "index.html").read_text()
    positions = [page.index(f"images/BloodImage_000{i}.jpg") for i in ("15", "16", "07", "11")]
    assert positions == sorted(positions)
    assert "4 of 4 images" in page
    printed = capsys.readouterr().out
    assert (
        "4 of 4 images have mistakes; n_gt 66, n_det 67, tp 63, fp 3, missed 2, poor_loc 1"
        in printed
    )

    # the default --pos-iou-thr 0.1 accepts the moved WBC (IoU 0.43) as a true positive, and a
    # platelet threshold of 0.6 drops the duplicate: 00016 is clean and gets no image
    out2 = tmp_path / "hard2"
    args = ["hard-examples", str(config), str(pkl), str(out2), "--score-thr", "Platelets=0.6"]
    assert main(args) == 0
    rows = _rows(out2 / "summary.csv")
    assert rows[4] == ["JPEGImages/BloodImage_00016.jpg", "13", "13", "13", "0", "0", "0", "0"]
    assert rows[1][2:5] == ["19", "18", "1"]
    assert not (out2 / "images" / "BloodImage_00016.jpg").exists()
    assert "3 of 4 images" in (out2 / "index.html").read_text()

    # --score-thr 0.1 lets the 0.2 background box of 00007 in; --simple with --clean-thr 0.99
    # removes the exact duplicate platelet only
    out3 = tmp_path / "hard3"
    args = ["hard-examples", str(config), str(pkl), str(out3), "--score-thr", "0.1", "--simple",
            "--clean-thr", "0.99"]  # fmt: skip
    assert main(args) == 0
    rows = _rows(out3 / "summary.csv")
    assert rows[1] == ["JPEGImages/BloodImage_00007.jpg", "18", "20", "18", "2", "0", "0", "2"]
    assert rows[4] == ["JPEGImages/BloodImage_00016.jpg", "13", "13", "13", "0", "0", "0", "0"]


def test_hard_examples_bad_arguments_name_the_culprit(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, pkl = _crafted(tmp_path, shared_data)
    with pytest.raises(SystemExit, match=r"unknown class 'Platelet'.*did you mean Platelets"):
        main(["hard-examples", str(config), str(pkl), str(tmp_path / "x"), "--score-thr",
              "Platelet=0.5"])  # fmt: skip
    short = dump([[np.zeros((0, 5), np.float32)] * 3], tmp_path / "short.pkl")
    with pytest.raises(SystemExit, match="holds 1 results but the test dataset has 4 images"):
        main(["hard-examples", str(config), str(short), str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="--min-pos-iou"):
        main(["hard-examples", str(config), str(pkl), str(tmp_path / "x"), "--min-pos-iou", "0.5"])
