import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import pytest

from detforge.analysis.logs import (
    LogAnalysisError,
    cal_train_time,
    load_json_log,
    load_json_logs,
    plot_curve,
)
from detforge.cli.main import main
from tests.tiny_demo import demo_config_text, make_synthetic_coco

ROOT = Path(__file__).resolve().parents[2]

# epoch -> the logged `time` of its train lines (iters 10, 20, 30, 40)
TIMES = {1: [0.9, 0.2, 0.4, 0.3], 2: [0.8, 0.1, 0.2, 0.3], 3: [0.7, 0.5, 0.4, 0.6]}


def _write_log(path: Path, records: list[dict[str, Any]], meta: bool = True) -> Path:
    lines = [{"env_info": "sys.platform: linux", "seed": 0, "exp_name": "x.py"}] if meta else []
    path.write_text("\n".join(json.dumps(r) for r in lines + records) + "\n")
    return path


def _synthetic_log(path: Path) -> Path:
    records: list[dict[str, Any]] = []
    for epoch, times in TIMES.items():
        for k, t in enumerate(times, start=1):
            loss = 1.0 / (epoch * k)
            records.append(dict(mode="train", epoch=epoch, iter=10 * k, lr=0.01, data_time=0.01,
                                loss_cls=loss, loss=2 * loss, time=t))  # fmt: skip
        records.append(dict(mode="val", epoch=epoch, iter=5, lr=0.01, bbox_mAP=0.1 * epoch))
    return _write_log(path, records)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Any:
    # Two PyTorch threads on a busy 2-core machine wait on each other (20x slower trainings).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: Any) -> list[Path]:
    """The ``*.log.json`` of two real 2-epoch trainings (different learning rates)."""
    root = tmp_path_factory.mktemp("two_runs")
    paths = make_synthetic_coco(root / "data", num_train=4, num_val=2, size=64, seed=0)
    logs = []
    for name, lr in (("run_a", 0.002), ("run_b", 0.0005)):
        config = root / f"{name}.py"
        config.write_text(demo_config_text(paths["root"], max_epochs=2, samples_per_gpu=2,
                                           img_size=64, lr=lr))  # fmt: skip
        code = main(["train", str(config), "--work-dir", str(root / name), "--seed", "0",
                     "--device", "cpu", "--cfg-options", "log_config.interval=1",
                     "evaluation.interval=1", "model.test_cfg.score_thr=0.0"])  # fmt: skip
        assert code == 0
        (log,) = (root / name).glob("*.log.json")
        logs.append(log)
    return logs


def test_plot_curve_of_two_real_runs_draws_two_curves_per_key(two_runs, tmp_path):
    logs = load_json_logs(two_runs)
    keys = ["loss_cls", "loss_bbox", "bbox_mAP"]
    fig = plot_curve(logs, keys=keys, title="two runs")
    assert len(fig.axes) == 3
    for ax, key in zip(fig.axes, keys, strict=True):
        assert len(ax.lines) == 2
        labels = [line.get_label() for line in ax.lines]
        assert labels == [f"{log.name}_{key}" for log in logs]
        assert ax.get_xlabel() == ("epoch" if key == "bbox_mAP" else "iter")
        for line, log in zip(ax.lines, logs, strict=True):
            if key == "bbox_mAP":  # one point per evaluated epoch
                assert line.get_xdata().tolist() == [1, 2]
                assert line.get_ydata().tolist() == [r["bbox_mAP"] for r in log.val()]
            else:  # 2 iterations per epoch, one line each: x = 1, 2, 3, 4
                assert line.get_xdata().tolist() == [1, 2, 3, 4]
                assert line.get_ydata().tolist() == [r[key] for r in log.train()]
    out = tmp_path / "curves.png"
    code = main(["analyze-logs", "plot_curve", *map(str, two_runs), "--keys", *keys,
                 "--legend", "a_cls", "a_bbox", "a_map", "b_cls", "b_bbox", "b_map",
                 "--title", "two runs", "--out", str(out)])  # fmt: skip
    assert code == 0
    png = cv2.imread(str(out))
    assert png is not None and png.shape[0] > 200 and png.std() > 5


def test_plot_curve_epoch_points_and_legend(tmp_path):
    log = load_json_log(_synthetic_log(tmp_path / "s.log.json"))
    fig = plot_curve([log], keys=["bbox_mAP", "loss"], legend=["map", "total"], style=None)
    (map_line,) = fig.axes[0].lines
    assert map_line.get_label() == "map"
    assert map_line.get_xdata().tolist() == [1, 2, 3]
    assert map_line.get_ydata().tolist() == pytest.approx([0.1, 0.2, 0.3])
    (loss_line,) = fig.axes[1].lines
    assert loss_line.get_xdata().tolist() == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]


def test_every_val_line_is_plotted_at_its_own_epoch_whatever_the_v2_flags(tmp_path):
    # evaluation.start=2, interval=2: val lines at epochs 2 and 4 only
    records: list[dict[str, Any]] = []
    for epoch in (1, 2, 3, 4):
        records.append(dict(mode="train", epoch=epoch, iter=10, loss=1.0 / epoch, time=0.1))
        if epoch % 2 == 0:
            records.append(dict(mode="val", epoch=epoch, iter=5, bbox_mAP=0.1 * epoch,
                                bbox_mAP_copypaste=f"{0.1 * epoch:.3f} 0.5 0.1"))  # fmt: skip
    log = load_json_log(_write_log(tmp_path / "every2.log.json", records))
    for start_epoch, eval_interval in ((1, 1), (1, 2), (2, 2), (3, 1), (1, 3)):
        fig = plot_curve([log], keys=["bbox_mAP"], start_epoch=start_epoch,
                         eval_interval=eval_interval)  # fmt: skip
        (line,) = fig.axes[0].lines
        assert line.get_xdata().tolist() == [2, 4]
        assert line.get_ydata().tolist() == pytest.approx([0.2, 0.4])
    # a key present but never numeric is an error, not an empty panel
    with pytest.raises(LogAnalysisError, match=r"every2\.log\.json: 'bbox_mAP_copypaste' has no "
                       r"numeric value to plot \(values: \['0\.200 0\.5 0\.1'"):  # fmt: skip
        plot_curve([log], keys=["bbox_mAP_copypaste"])


def test_plot_curve_errors_name_the_culprit(tmp_path):
    log = load_json_log(_synthetic_log(tmp_path / "s.log.json"))
    with pytest.raises(LogAnalysisError, match=r"s\.log\.json does not contain 'segm_mAP'.*"
                       r"--no-validate"):  # fmt: skip
        plot_curve([log], keys=["segm_mAP"])
    with pytest.raises(LogAnalysisError, match=r"--legend has 1 entries but .* need 2"):
        plot_curve([log, log], keys=["loss"], legend=["only one"])
    with pytest.raises(LogAnalysisError, match="unknown --style 'nope'"):
        plot_curve([log], keys=["loss"], style="nope")
    bad = tmp_path / "bad.log.json"
    bad.write_text('{"seed": 0}\n{"mode": "train", "epoch": 1,\n')
    with pytest.raises(LogAnalysisError, match=r"bad\.log\.json:2: not valid JSON"):
        load_json_log(bad)


def test_first_line_is_skipped_only_when_it_is_metadata(tmp_path):
    rec = dict(mode="train", epoch=1, iter=1, loss=1.0, time=0.5)
    with_meta = load_json_log(_write_log(tmp_path / "a.log.json", [rec, {"note": "no epoch"}]))
    assert with_meta.meta["seed"] == 0 and len(with_meta.records) == 1
    without = load_json_log(_write_log(tmp_path / "b.log.json", [rec, rec], meta=False))
    assert without.meta == {} and len(without.records) == 2
    assert [r["loss"] for r in without.records] == [1.0, 1.0]


def test_cal_train_time_equals_hand_computation(tmp_path, capsys):
    path = _synthetic_log(tmp_path / "s.log.json")
    # first logged iteration of each epoch dropped: epoch means 0.3, 0.2, 0.5
    stats = cal_train_time(load_json_log(path))
    assert (stats.slowest_epoch, stats.fastest_epoch, stats.num_epochs) == (3, 2, 3)
    assert stats.slowest_time == pytest.approx(0.5)
    assert stats.fastest_time == pytest.approx(0.2)
    assert stats.std_over_epochs == pytest.approx(0.1247219, abs=1e-6)  # std(0.3, 0.2, 0.5)
    assert stats.average_iter_time == pytest.approx(3.0 / 9)
    assert main(["analyze-logs", "cal_train_time", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[:5] == [
        f"-----Analyze train time of {path}-----",
        "slowest epoch 3, average time is 0.5000",
        "fastest epoch 2, average time is 0.2000",
        "time std over epochs is 0.1247",
        "average iter time: 0.3333 s/iter",
    ]
    # with outliers: epoch means 0.45, 0.35, 0.55; 12 values summing to 5.4
    assert main(["analyze-logs", "cal_train_time", str(path), "--include-outliers"]) == 0
    assert capsys.readouterr().out.splitlines()[1:5] == [
        "slowest epoch 3, average time is 0.5500",
        "fastest epoch 2, average time is 0.3500",
        "time std over epochs is 0.0816",
        "average iter time: 0.4500 s/iter",
    ]


def test_cal_train_time_needs_two_logged_iterations_per_epoch(tmp_path, capsys):
    rec = dict(mode="train", epoch=1, iter=10, loss=1.0, time=0.5)
    path = _write_log(tmp_path / "one.log.json", [rec, dict(rec, epoch=2)])
    assert main(["analyze-logs", "cal_train_time", str(path)]) == 1
    assert "reduce log_config.interval" in capsys.readouterr().err
    assert cal_train_time(load_json_log(path), include_outliers=True).average_iter_time == 0.5


def test_v2_script_shim(tmp_path):
    path = _synthetic_log(tmp_path / "s.log.json")
    script = ROOT / "tools" / "analysis_tools" / "analyze_logs.py"
    out = subprocess.run([sys.executable, str(script), "cal_train_time", str(path)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "average iter time: 0.3333 s/iter" in out
