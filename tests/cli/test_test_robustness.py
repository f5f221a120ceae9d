"""``detforge test-robustness``: a tiny real GFL on two COCO images, clean and corrupted."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.robustness import COCO_METRICS
from detforge.cli.main import main
from tests.apis.tiny_detector import write_tiny_config


def _two_image_coco(root: Path, shared_data: Path) -> tuple[Path, Path]:
    small = shared_data / "tiny_coco" / "small_coco"
    full = json.loads((small / "instances_train2017_small.json").read_text())
    images = full["images"][:2]
    ids = {img["id"] for img in images}
    subset = dict(images=images, categories=full["categories"],
                  annotations=[a for a in full["annotations"] if a["image_id"] in ids])  # fmt: skip
    ann = root / "two.json"
    ann.write_text(json.dumps(subset))
    return ann, small / "train_2017_small"


def test_noise_runs_and_summary(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, weights = write_tiny_config(tmp_path, "gfl")
    ann, img_dir = _two_image_coco(tmp_path, shared_data)
    with open(config, "a") as f:
        f.write(f"data = dict(workers_per_gpu=0, test=dict(type='CocoDataset', "
                f"ann_file={str(ann)!r}, img_prefix={str(img_dir)!r}, "
                "pipeline=test_pipeline))\n")  # fmt: skip
    out, show = tmp_path / "rob" / "res.pkl", tmp_path / "show"
    argv = ["test-robustness", str(config), str(weights), "--out", str(out),
            "--corruptions", "gaussian_noise", "pixelate", "--severities", "0", "5",
            "--eval", "bbox", "--show-dir", str(show), "--show-score-thr", "0.99",
            "--final-prints", "P", "mPC", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    aggregated = pickle.loads((tmp_path / "rob" / "res_results.pkl").read_bytes())
    assert list(aggregated) == ["gaussian_noise", "pixelate"]
    assert sorted(aggregated["pixelate"]) == [0, 5]
    assert aggregated["pixelate"][0] == aggregated["gaussian_noise"][0]  # clean run shared
    for by_severity in aggregated.values():
        for entry in by_severity.values():
            assert list(entry["bbox"]) == list(COCO_METRICS)
            assert all(0.0 <= v <= 1.0 or v == -1 for v in entry["bbox"].values())
    corrupted = pickle.loads(out.read_bytes())  # raw results of the latest run: pixelate 5
    assert len(corrupted) == 2
    assert {p.name for p in (show / "gaussian_noise").iterdir()} == {"0", "5"}
    assert len(list((show / "pixelate" / "5").iterdir())) == 2
    clean_out = tmp_path / "clean.pkl"
    argv = ["test-robustness", str(config), str(weights), "--out", str(clean_out),
            "--corruptions", "None", "--device", "cpu"]  # fmt: skip
    printed = capsys.readouterr().out
    assert main(argv) == 0
    clean = pickle.loads(clean_out.read_bytes())
    assert not (tmp_path / "clean_results.pkl").exists()  # no --eval: nothing to aggregate
    # the model saw different pixels: its detections moved
    assert any(c.shape != d.shape or not np.allclose(c, d) for c, d in
               zip(clean[0], corrupted[0], strict=True))  # fmt: skip
    assert "Testing pixelate at severity 5" in printed
    assert "Testing pixelate at severity 0" not in printed
    assert "Performance on Clean Data [P] (bbox)" in printed
    assert "Mean Performance under Corruption [mPC] (bbox)" in printed


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--out must be"):
        main(["test-robustness", "c.py", "w.pth", "--out", str(tmp_path / "r.json")])
    with pytest.raises(SystemExit, match="alone"):
        main(["test-robustness", "c.py", "w.pth", "--out", "r.pkl", "--corruptions", "noise",
              "fog"])  # fmt: skip
    with pytest.raises(SystemExit, match=r"0\.\.5"):
        main(["test-robustness", "c.py", "w.pth", "--out", "r.pkl", "--severities", "6"])
