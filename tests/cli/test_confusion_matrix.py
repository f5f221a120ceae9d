"""``detforge confusion-matrix`` on crafted BCCD results with a hand-computed matrix."""

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


def test_confusion_matrix_equals_the_hand_computed_one(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_bccd_config(tmp_path, shared_data)
    dataset = build_test_dataset(load_config(config).cfg)
    results = perfect_results(dataset)  # 00007, 00011, 00015, 00016; no two GT overlap >= 0.5
    rbc, wbc, platelets = 0, 1, 2
    # 00007: a WBC detection on empty background -> background row, WBC column
    results[0][wbc] = np.vstack([results[0][wbc], [[0, 0, 3, 3, 0.8]]]).astype(np.float32)
    # 00011: the platelet is missed -> Platelets row, background column
    results[1][platelets] = np.zeros((0, 5), np.float32)
    # 00015: the WBC is called an RBC -> (WBC, RBC) and, not found as a WBC, (WBC, background)
    results[2][rbc] = np.vstack([results[2][rbc], results[2][wbc]])
    results[2][wbc] = np.zeros((0, 5), np.float32)
    # 00016: a duplicate RBC scoring under --score-thr 0.3 changes nothing
    low = results[3][rbc][:1].copy()
    low[:, 4] = 0.1
    results[3][rbc] = np.vstack([results[3][rbc], low])
    pkl = dump(results, tmp_path / "results.pkl")

    save_dir = tmp_path / "cm"
    assert main(["confusion-matrix", str(config), str(pkl), str(save_dir)]) == 0
    expected = np.array(
        [
            # pred: RBC  WBC  Platelets  background       gt:
            [17 + 17 + 14 + 11, 0, 0, 0],  # RBC (GT counts of the four XML files)
            [1, 3, 0, 1],  # WBC
            [0, 0, 2, 1],  # Platelets
            [0, 1, 0, 0],  # background
        ]
    )
    np.testing.assert_array_equal(np.load(save_dir / "confusion_matrix.npy"), expected)
    with open(save_dir / "confusion_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["gt \\ pred", "RBC", "WBC", "Platelets", "background"]
    assert rows[2] == ["WBC", "1", "3", "0", "1"]
    png = imread(save_dir / "confusion_matrix.png")
    assert png.ndim == 3 and min(png.shape[:2]) > 300

    # --score-thr 0.05 lets the low duplicate in: it overlaps its RBC twice (IoU 1)
    assert main(["confusion-matrix", str(config), str(pkl), str(save_dir / "low"),
                 "--score-thr", "0.05"]) == 0  # fmt: skip
    low_matrix = np.load(save_dir / "low" / "confusion_matrix.npy")
    assert low_matrix[rbc, rbc] == expected[rbc, rbc] + 1
    # ... and --nms-iou-thr removes it again
    assert main(["confusion-matrix", str(config), str(pkl), str(save_dir / "nms"),
                 "--score-thr", "0.05", "--nms-iou-thr", "0.5"]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(save_dir / "nms" / "confusion_matrix.npy"), expected)
