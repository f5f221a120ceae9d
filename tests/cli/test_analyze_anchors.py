"""``detforge analyze-anchors``: the crafted thin-box set through a v2 config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.analysis.test_anchors import BOXES, write_thin_dataset


def _write_config(root: Path, model: str) -> Path:
    train = write_thin_dataset(root)
    # formatting steps, which analyze-anchors must skip to read the boxes
    train["pipeline"] = [*train["pipeline"], dict(type="DefaultFormatBundle"),
                         dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"])]  # fmt: skip
    config = root / "thin.py"
    config.write_text(f"{model}\ndata = dict(train=dict(type='RepeatDataset', times=3, "
                      f"dataset={train!r}))\n")  # fmt: skip
    return config


RETINA = """model = dict(
    type='RetinaNet',
    bbox_head=dict(type='RetinaHead', anchor_generator=dict(
        type='AnchorGenerator', strides=[16], ratios=[1.0], scales=[2.0])),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                 min_pos_iou=0.3)))"""


def test_cli_reports_shares_and_writes_histogram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, RETINA)
    out = tmp_path / "out"
    assert main(["analyze-anchors", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(BOXES)} ground-truth boxes in 1 images" in printed  # RepeatDataset looked through
    all_row = next(line for line in printed.splitlines() if line.startswith("all "))
    mean = (1 + 1 + 0.75 + 1 / 7 + 1 / 7 + 1 / 3) / 6
    assert [c.strip() for c in all_row.split("|")] == ["all", "6", f"{mean:.3f}", "50.0%", "33.3%"]
    report = json.loads((out / "anchor_analysis.json").read_text())
    assert report["thresholds"] == dict(pos_iou_thr=0.5, min_pos_iou=0.3)
    thin = next(row for row in report["buckets"] if row["bucket"] == "h/w<1/4")
    assert (thin["num_gts"], thin["below_min_pos_iou"]) == (1, 1.0)
    assert (out / "anchor_iou_hist.png").stat().st_size > 1000


def test_cli_rejects_anchor_free_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path, "model = dict(type='FCOS', bbox_head=dict(type='FCOSHead'))")
    with pytest.raises(SystemExit, match="anchor-free"):
        main(["analyze-anchors", str(config)])
