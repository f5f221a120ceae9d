"""``detforge optimize-anchors``: k-means on a crafted 3-cluster set writes v2's JSON."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from detforge.cli.main import main
from tests.analysis.test_anchor_optimizer import CLUSTERS, planted_whs

YOLO_MODEL = """model = dict(type='YOLOV3', bbox_head=dict(type='YOLOV3Head', anchor_generator=dict(
    type='YOLOAnchorGenerator', strides=[32, 16, 8],
    base_sizes=[[(116, 90)], [(30, 61)], [(10, 13)]])))
"""


def _write_config(root: Path, model: str) -> Path:
    """Boxes of :data:`CLUSTERS` in 608x608 images (input shape 608: no rescaling)."""
    whs = planted_whs(per_cluster=20)
    infos = []
    for i in range(0, len(whs), 10):
        chunk = whs[i : i + 10]
        boxes = np.hstack([np.full((len(chunk), 2), 5.0), 5.0 + chunk]).astype(np.float32)
        ann = dict(bboxes=boxes, labels=np.zeros(len(chunk), np.int64))
        infos.append(dict(filename=f"{i}.jpg", width=608, height=608, ann=ann))
    with open(root / "boxes.pkl", "wb") as f:
        pickle.dump(infos, f)
    config = root / "yolo.py"
    config.write_text(model + f"data = dict(train=dict(type='CustomDataset', classes=('a',), "
                      f"ann_file={str(root / 'boxes.pkl')!r}, pipeline=[]))\n")  # fmt: skip
    return config


def test_kmeans_writes_cluster_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path, YOLO_MODEL)
    out = tmp_path / "anchors"
    argv = ["optimize-anchors", str(config), "--algorithm", "k-means", "--input-shape", "608",
            "608", "--iters", "50", "--output-dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    anchors = json.loads((out / "anchor_optimize_result.json").read_text())
    np.testing.assert_allclose(anchors, CLUSTERS, rtol=0.03)
    printed = capsys.readouterr().out
    assert "60 boxes; fitting 3 anchors with k-means" in printed
    assert f"as base_sizes: [[{tuple(anchors[2])}], [{tuple(anchors[1])}]" in printed


def test_non_yolo_generator_is_refused(tmp_path: Path) -> None:
    model = YOLO_MODEL.replace("YOLOAnchorGenerator", "AnchorGenerator")
    config = _write_config(tmp_path, model)
    with pytest.raises(SystemExit, match="YOLOAnchorGenerator"):
        main(["optimize-anchors", str(config), "--algorithm", "k-means"])
