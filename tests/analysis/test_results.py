"""Reading results.pkl files and turning v2 results into arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from detforge.analysis.browse import skip_pipeline_steps
from detforge.analysis.results import ResultsError, flatten_result, load_results, loading_pipeline
from detforge.structures.masks import encode_mask_results
from detforge.utils.safe_pickle import UnsafePickleError
from tests.conftest import write_code_pickle


def test_load_results_checks_type_and_length(tmp_path: Path) -> None:
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(ResultsError, match="expected a list of per-image v2 results"):
        load_results(path)
    path.write_bytes(pickle.dumps([[np.zeros((0, 5))]] * 2))
    with pytest.raises(ResultsError, match="holds 2 results but the test dataset has 3 images"):
        load_results(path, num_images=3)
    assert len(load_results(path, num_images=2)) == 2
    with pytest.raises(FileNotFoundError, match="missing"):
        load_results(tmp_path / "missing.pkl")


def test_flatten_decodes_rle_masks_in_result_order() -> None:
    first = np.zeros((6, 8), bool)
    first[1:3, 2:5] = True
    second = np.eye(6, 8, dtype=bool)
    boxes = [np.array([[2, 1, 5, 3, 0.9]], np.float32), np.zeros((0, 5), np.float32),
             np.array([[0, 0, 6, 6, 0.4]], np.float32)]  # fmt: skip
    segms = encode_mask_results([[first], [], [second]])
    bboxes, labels, masks = flatten_result((boxes, segms))
    assert labels.tolist() == [0, 2]
    np.testing.assert_allclose(bboxes[:, 4], [0.9, 0.4], rtol=1e-6)
    assert masks is not None and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], first)
    np.testing.assert_array_equal(masks[1], second)
    with pytest.raises(ResultsError, match="class 2 has 1 boxes but 0 masks"):
        flatten_result((boxes, [[first], [], []]))


def test_flatten_reads_mask_scoring_results_and_drops_empty_masks() -> None:
    mask = np.eye(4, 5, dtype=bool)
    boxes = [np.zeros((0, 5), np.float32), np.array([[0, 0, 4, 4, 0.8]], np.float32)]
    bboxes, labels, masks = flatten_result((boxes, ([[], [mask]], [[], [0.5]])))
    assert labels.tolist() == [1] and bboxes.tolist() == [[0, 0, 4, 4, pytest.approx(0.8)]]
    assert masks is not None and np.array_equal(masks[0], mask)
    empty = [np.zeros((0, 5), np.float32)] * 2
    for result in (empty, (empty, [[], []]), (empty, ([[], []], [[], []]))):
        bboxes, labels, masks = flatten_result(result)
        assert bboxes.shape == (0, 5) and labels.shape == (0,) and masks is None
    with pytest.raises(ResultsError, match="got 3 items"):
        flatten_result((empty, [[], []], None))


def test_pipeline_editing() -> None:
    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
        dict(type="Resize", img_scale=(64, 64), keep_ratio=True),
        dict(type="Normalize", mean=[0, 0, 0], std=[1, 1, 1]),
        dict(type="DefaultFormatBundle"),
        dict(type="Collect", keys=["img"]),
    ]
    assert [s["type"] for s in loading_pipeline(pipeline)] == [
        "LoadImageFromFile",
        "LoadAnnotations",
    ]
    concat = dict(
        type="ConcatDataset",
        datasets=[dict(type="CocoDataset", pipeline=list(pipeline)),
                  dict(type="RepeatDataset", times=2,
                       dataset=dict(type="CocoDataset", pipeline=list(pipeline)))],
    )  # fmt: skip
    kept = skip_pipeline_steps(concat, ["Normalize", "Collect"])
    assert kept == ["LoadImageFromFile", "LoadAnnotations", "Resize", "DefaultFormatBundle"]
    assert len(concat["datasets"][1]["dataset"]["pipeline"]) == 4


def test_load_results_reads_mask_results_and_refuses_code(tmp_path: Path) -> None:
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    boxes = [np.array([[2, 1, 5, 3, 0.9]], np.float32), np.zeros((0, 5), np.float32)]
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps([(boxes, encode_mask_results([[mask], []]))]))
    [(loaded_boxes, segms)] = load_results(path, num_images=1)
    assert segms[0][0]["size"] == [6, 8] and isinstance(segms[0][0]["counts"], bytes)
    np.testing.assert_array_equal(loaded_boxes[0], boxes[0])
    marker = tmp_path / "ran"
    write_code_pickle(path, marker)
    with pytest.raises(UnsafePickleError, match="holds code or objects"):
        load_results(path)
    assert not marker.exists()
