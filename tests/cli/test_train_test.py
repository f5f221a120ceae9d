import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.results import load_results
from detforge.cli.main import main
from tests.tiny_demo import demo_config_text, make_synthetic_coco


@pytest.fixture
def tiny_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = make_synthetic_coco(tmp_path / "data", num_train=4, num_val=2, size=64, seed=0)
    config = tmp_path / "tiny_retina.py"
    config.write_text(demo_config_text(paths["root"], max_epochs=1, samples_per_gpu=2, img_size=64))
    return tmp_path, config


def test_train_then_test(tiny_setup, capsys, caplog):
    root, config = tiny_setup
    work_dir = root / "work"
    code = main(["train", str(config), "--work-dir", str(work_dir), "--seed", "0",
                 "--device", "cpu", "--cfg-options", "log_config.interval=1"])  # fmt: skip
    assert code == 0
    assert (work_dir / "epoch_1.pth").is_file()
    assert (work_dir / "latest.pth").exists()
    assert (work_dir / "tiny_retina.py").is_file()  # the dumped merged config
    logs = sorted(work_dir.glob("*.log.json"))
    assert logs, list(work_dir.iterdir())
    assert sorted(work_dir.glob("*.log")), "text log missing"
    lines = [json.loads(line) for line in logs[0].read_text().splitlines() if line.strip()]
    assert lines[0]["seed"] == 0
    assert any(line.get("mode") == "train" and "loss" in line for line in lines[1:])

    out = root / "results.pkl"
    capsys.readouterr()
    code = main(["test", str(config), str(work_dir / "epoch_1.pth"), "--out", str(out),
                 "--eval", "bbox", "--device", "cpu",
                 "--cfg-options", "model.test_cfg.score_thr=0.0"])  # fmt: skip
    assert code == 0
    assert "bbox_mAP" in capsys.readouterr().out
    with open(out, "rb") as f:
        results = pickle.load(f)
    assert len(results) == 2
    # the analysis tools read the same file through the restricted unpickler
    safe = load_results(out, num_images=2)
    assert all(
        np.array_equal(a, b)
        for x, y in zip(results, safe, strict=True)
        for a, b in zip(x, y, strict=True)
    )
    assert all(len(per_image) == 2 for per_image in results)  # one array per class
    assert all(arr.shape[1:] == (5,) for per_image in results for arr in per_image)

    # v2's tools/test.py: --options means --eval-options; --format-only needs no prefix
    checkpoint = str(work_dir / "epoch_1.pth")
    capsys.readouterr()
    assert main(["test", str(config), checkpoint, "--format-only", "--device", "cpu",
                 "--options", f"jsonfile_prefix={root / 'res'}"]) == 0  # fmt: skip
    assert (root / "res.bbox.json").is_file()
    assert "--options is deprecated in favor of --eval-options" in capsys.readouterr().err
    assert main(["test", str(config), checkpoint, "--format-only", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "temporary folder" in printed
    temp_json = printed.split("formatted bbox results: ")[1].split()[0]
    assert isinstance(json.loads(Path(temp_json).read_text()), list)
    caplog.clear()
    assert main(["test", str(config), checkpoint, "--eval", "bbox", "--device", "cpu",
                 "--cfg-options", "model.test_cfg.score_thr=0.0",
                 "--options", "classwise=True"]) == 0  # fmt: skip
    assert "| category" in caplog.text  # the per-class table


def test_test_requires_an_output_flag(tiny_setup):
    _, config = tiny_setup
    with pytest.raises(SystemExit, match="at least one of"):
        main(["test", str(config), "missing.pth"])


def test_test_rejects_non_pickle_out(tiny_setup):
    _, config = tiny_setup
    with pytest.raises(SystemExit, match=r"\.pkl"):
        main(["test", str(config), "missing.pth", "--out", "r.json"])
