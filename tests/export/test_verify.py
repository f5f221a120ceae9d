"""compare_outputs: pairs detections per class whatever their order, and flags differences."""

from __future__ import annotations

import numpy as np

from detforge.export.verify import compare_outputs, match_detections


def _ref():
    dets = np.array(
        [[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.5], [5, 5, 9, 9, 0.5], [1, 1, 4, 4, 0.7]],
        dtype=np.float32,
    )
    return dict(dets=dets, labels=np.array([0, 0, 0, 2]), segms=None)


def test_equal_outputs_in_another_order_match():
    ref = _ref()
    order = [3, 2, 0, 1]  # ties (0.5, 0.5) swapped, classes interleaved
    report = compare_outputs(ref, [ref["dets"][order] + 1e-4, ref["labels"][order]])
    assert report.ok
    assert abs(report.max_box_diff - 1e-4) < 1e-6 and report.num_exported == 4


def test_differences_are_reported():
    ref = _ref()
    moved = ref["dets"].copy()
    moved[1, 2] += 0.01
    report = compare_outputs(ref, [moved, ref["labels"]])
    assert not report.ok and abs(report.max_box_diff - 0.01) < 1e-4
    assert "MISMATCH" in report.summary()
    relabelled = compare_outputs(ref, [ref["dets"], np.array([0, 0, 1, 2])])
    assert not relabelled.ok and not relabelled.labels_equal
    missing = compare_outputs(ref, [ref["dets"][:3], ref["labels"][:3]])
    assert not missing.ok and missing.num_exported == 3


def test_match_detections_pairs_closest_first():
    a = np.array([[0, 0, 2, 2, 0.5], [0, 0, 2, 2.5, 0.5]], np.float32)
    b = a[::-1].copy()
    ref_index, index = match_detections(a, np.zeros(2), b, np.zeros(2))
    assert ref_index.tolist() == [0, 1] and index.tolist() == [1, 0]


def test_raw_outputs():
    raw = [np.ones((1, 2, 3, 3), np.float32)]
    assert compare_outputs(dict(raw=raw), [raw[0] + 1e-5]).ok
    report = compare_outputs(dict(raw=raw), [raw[0][:, :1]])
    assert not report.ok and "raw outputs" in report.summary()
