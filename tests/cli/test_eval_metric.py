"""``detforge eval-metric`` on crafted BCCD results whose mAP is known by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.results import build_test_dataset
from detforge.cli.main import main
from detforge.config import load_config
from tests.analysis.bccd import IMAGES, dump, perfect_results, write_bccd_config
from tests.conftest import write_code_pickle


def _printed_metrics(out: str) -> dict:
    return ast.literal_eval(out.strip().splitlines()[-1])


def test_eval_metric_map_equals_the_hand_computed_recall(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_bccd_config(tmp_path, shared_data)
    dataset = build_test_dataset(load_config(config).cfg)
    results = perfect_results(dataset)
    results[1] = [np.zeros((0, 5), np.float32)] * 3  # BloodImage_00011: nothing found
    results[3][0] = np.zeros((0, 5), np.float32)  # BloodImage_00016: no RBC found
    pkl = dump(results, tmp_path / "results.pkl")
    # every detection is a true positive, so each class's AP is its recall
    counts = np.array(list(IMAGES.values()))  # images x classes
    found = counts.copy()
    found[1] = 0
    found[3, 0] = 0
    expected = float(np.mean(found.sum(0) / counts.sum(0)))  # (31/59 + 3/4 + 2/3) / 3
    assert expected == pytest.approx((31 / 59 + 3 / 4 + 2 / 3) / 3)

    assert main(["eval-metric", str(config), str(pkl), "--eval", "mAP"]) == 0
    metrics = _printed_metrics(capsys.readouterr().out)
    assert metrics["mAP"] == pytest.approx(expected, abs=1e-6)
    assert metrics["AP50"] == round(expected, 3)

    # --eval-options reach dataset.evaluate (several IoU thresholds); the config's
    # evaluation dict lost its hook-only keys (save_best) on the way
    assert main(["eval-metric", str(config), str(pkl), "--eval", "mAP",
                 "--eval-options", "iou_thr=[0.5,0.75]"]) == 0  # fmt: skip
    metrics = _printed_metrics(capsys.readouterr().out)
    assert set(metrics) == {"AP50", "AP75", "mAP"}
    assert metrics["AP75"] == round(expected, 3)  # perfect boxes match at any IoU

    # every EvalHook argument is dropped (val_loss, by_epoch, ...), and the config's
    # eval_kwargs reach dataset.evaluate like the hook's
    assert main(["eval-metric", str(config), str(pkl), "--eval", "mAP", "--cfg-options",
                 "evaluation.val_loss=False", "evaluation.by_epoch=True",
                 "evaluation.eval_kwargs.iou_thr=[0.5,0.75]"]) == 0  # fmt: skip
    metrics = _printed_metrics(capsys.readouterr().out)
    assert set(metrics) == {"AP50", "AP75", "mAP"}
    assert metrics["AP75"] == round(expected, 3)


def test_eval_metric_errors_name_the_problem(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_bccd_config(tmp_path, shared_data)
    pkl = dump([[np.zeros((0, 5), np.float32)] * 3], tmp_path / "short.pkl")
    with pytest.raises(SystemExit, match="1 results but the test dataset has 4 images"):
        main(["eval-metric", str(config), str(pkl), "--eval", "mAP"])
    with pytest.raises(SystemExit, match="at least one operation"):
        main(["eval-metric", str(config), str(pkl)])
    with pytest.raises(SystemExit, match="cannot be both"):
        main(["eval-metric", str(config), str(pkl), "--eval", "mAP", "--format-only"])
    evil, marker = tmp_path / "evil.pkl", tmp_path / "ran"
    write_code_pickle(evil, marker)
    capsys.readouterr()
    assert main(["eval-metric", str(config), str(evil), "--eval", "mAP"]) == 1
    err = capsys.readouterr().err
    assert f"results file {evil} holds code or objects" in err and "not loaded" in err
    assert not marker.exists()
