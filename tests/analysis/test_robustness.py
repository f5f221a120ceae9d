"""P / mPC / rPC on crafted robustness results, against hand computations."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.robustness import (
    COCO_METRICS,
    corrupted_pipeline,
    format_coco_summary,
    format_robustness,
    load_aggregated,
    resolve_corruptions,
    robustness_scores,
)
from detforge.utils.safe_pickle import UnsafePickleError
from tests.conftest import write_code_pickle


def coco_entry(ap: float) -> dict:
    """A COCO-style eval where every metric is ``ap`` except AP50 = ``ap + 0.1``."""
    metrics = dict.fromkeys(COCO_METRICS, ap)
    metrics["AP50"] = ap + 0.1
    return {"bbox": metrics}


# clean AP 0.40; fog: 0.30 0.28 0.26 0.24 0.22; snow: 0.20 ... 0.12; saturate (holdout): 0.05
CRAFTED = {
    "fog": {0: coco_entry(0.4), **{s: coco_entry(0.32 - 0.02 * s) for s in range(1, 6)}},
    "snow": {0: coco_entry(0.4), **{s: coco_entry(0.22 - 0.02 * s) for s in range(1, 6)}},
    "saturate": {0: coco_entry(0.4), **{s: coco_entry(0.05) for s in range(1, 6)}},
}


def test_scores_by_hand() -> None:
    scores = robustness_scores(CRAFTED, metrics=["AP", "AP50"])
    benchmark = np.mean([0.30, 0.28, 0.26, 0.24, 0.22, 0.20, 0.18, 0.16, 0.14, 0.12])  # 0.21
    np.testing.assert_allclose(scores["P"], [0.4, 0.5])
    np.testing.assert_allclose(scores["mPC"], [benchmark, benchmark + 0.1])
    np.testing.assert_allclose(scores["rPC"], [benchmark / 0.4, (benchmark + 0.1) / 0.5])
    every = (benchmark * 10 + 0.05 * 5) / 15
    np.testing.assert_allclose(robustness_scores(CRAFTED, metrics=["AP"], aggregate="all")["mPC"],
                               [every])  # fmt: skip


def test_missing_severities_are_left_out_and_voc() -> None:
    partial = {"fog": {0: coco_entry(0.5), 2: coco_entry(0.3), 4: coco_entry(0.1)}}
    assert robustness_scores(partial, metrics=["AP"])["mPC"] == pytest.approx([0.2])
    voc = {"fog": {0: [{"ap": 0.8}, {"ap": 0.6}], 1: [{"ap": 0.4}, {"ap": 0.2}],
                   3: [{"ap": 0.2}, {"ap": 0.0}]}}  # fmt: skip
    scores = robustness_scores(voc, dataset="voc")
    assert (scores["P"][0], scores["mPC"][0]) == pytest.approx((0.7, 0.2))
    assert scores["rPC"][0] == pytest.approx(0.2 / 0.7)
    text = format_robustness(voc, dataset="voc", prints=["P", "mPC", "rPC"])
    assert "[P] in AP50 = 0.700" in text and "[rPC] in % = 28.6" in text


def test_errors_name_the_problem() -> None:
    with pytest.raises(KeyError, match="'segm'"):
        robustness_scores(CRAFTED, task="segm")
    with pytest.raises(ValueError, match="aggregate='all'"):
        robustness_scores({"saturate": CRAFTED["saturate"]})
    clean_only = {"fog": {0: coco_entry(0.4)}}
    assert "not available" in format_robustness(clean_only, prints=["mPC", "rPC"])


def test_formatting() -> None:
    text = format_robustness(CRAFTED, metrics=["AP", "AP50"], prints=["P", "rPC"])
    assert "AP    =  0.400" in text and "AP50  =  0.500" in text
    assert "AP    => 52.5 %" in text and "AP50  => 62.0 %" in text
    lines = format_coco_summary(list(np.linspace(0, 1.1, 12))).splitlines()
    assert lines[0].endswith("maxDets=100 ] = 0.000") and "(AR) @[ IoU=0.50:0.95 | area=   all |" \
        " maxDets=  1 ] = 0.600" in lines[6]  # fmt: skip


def test_corruption_names_and_pipeline(tmp_path: Path) -> None:
    assert resolve_corruptions(["holdout"]) == ["speckle_noise", "gaussian_blur", "spatter",
                                                "saturate"]  # fmt: skip
    assert resolve_corruptions(["fog", "snow"]) == ["fog", "snow"]
    with pytest.raises(ValueError, match="'smog'"):
        resolve_corruptions(["fog", "smog"])
    with pytest.raises(ValueError, match="alone"):
        resolve_corruptions(["fog", "noise"])
    steps = corrupted_pipeline([dict(type="LoadImageFromFile"), dict(type="Collect")], "fog", 0)
    assert [s["type"] for s in steps] == ["LoadImageFromFile", "Collect"]
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"_results\.pkl"):
        load_aggregated(path)
    marker = tmp_path / "ran"
    write_code_pickle(path, marker)
    with pytest.raises(UnsafePickleError, match=r"robustness results .* holds code"):
        load_aggregated(path)
    assert not marker.exists()
