"""``detforge coco-error-analysis`` on tiny_coco with detections made from perturbed GT."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.cli.main import main
from tests.analysis.coco_results import perturbed_results, tiny_coco_ann


def test_c50_c75_equal_cocoeval_and_plots_exist(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = tiny_coco_ann(shared_data)
    res = perturbed_results(ann, tmp_path / "results.bbox.json")
    out = tmp_path / "errors"
    assert main(["coco-error-analysis", str(res), str(out), "--ann", str(ann)]) == 0

    gt = COCO(str(ann))
    evaluator = COCOeval(gt, gt.loadRes(str(res)), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    with open(out / "bbox" / "ap_breakdown.csv", newline="") as f:
        rows = {(r["category"], r["area"]): r for r in csv.DictReader(f)}
    overall = rows[("allclass", "allarea")]
    assert float(overall["C50"]) == pytest.approx(evaluator.stats[1], abs=1e-6)
    assert float(overall["C75"]) == pytest.approx(evaluator.stats[2], abs=1e-6)
    assert 0.3 < evaluator.stats[1] < 0.7  # the perturbation leaves a meaningful AP
    # each rule forgives more: the curves are nested
    values = [float(overall[t]) for t in ("C75", "C50", "Loc", "Sim", "Oth", "BG", "FN")]
    assert values == sorted(values) and values[-1] == 1.0

    names = {p.name for p in (out / "bbox").glob("*.png")}
    with_gt = {gt.loadCats(a["category_id"])[0]["name"] for a in gt.dataset["annotations"]}
    assert len(names) == 4 * (1 + len(with_gt))
    assert "bbox-allclass-allarea.png" in names and "bbox-person-small.png" in names
    printed = capsys.readouterr().out
    assert f"allarea: {values[0]:.3f}  {values[1]:.3f}" in printed


def test_cli_errors(tmp_path: Path, shared_data: Path) -> None:
    ann = tiny_coco_ann(shared_data)
    res = perturbed_results(ann, tmp_path / "r.json")
    assert main(["coco-error-analysis", str(res), str(tmp_path), "--ann", "nope.json"]) == 1
    with pytest.raises(SystemExit, match="no 'segmentation'"):
        main(["coco-error-analysis", str(res), str(tmp_path), "--ann", str(ann), "--types", "segm"])
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([]))
    with pytest.raises(SystemExit, match="non-empty JSON list"):
        main(["coco-error-analysis", str(empty), str(tmp_path), "--ann", str(ann)])
