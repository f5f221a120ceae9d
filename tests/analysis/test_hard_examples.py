"""Matching rules of the hard-example review on hand-made boxes with hand-computed overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.analysis.hard_examples import (
    clean_detections,
    match_dataset,
    match_image,
    parse_score_thr,
    resolve_score_thr,
)

GT = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32)
LABELS = np.array([0, 0, 1])


def _res(cls0: list[list[float]], cls1: list[list[float]]) -> list[np.ndarray]:
    return [np.array(c, np.float32).reshape(-1, 5) for c in (cls0, cls1)]


def test_every_category_on_a_hand_made_image() -> None:
    result = _res(
        [
            [0, 0, 10, 10, 0.9],  # tp on GT 0
            [0, 0, 10, 10, 0.8],  # duplicate of GT 0 -> fp 'dup'
            [20, 0, 28, 4, 0.7],  # on GT 1 with IoU 32 / 100 = 0.32 -> poor_loc under 0.5
            [40, 0, 50, 10, 0.6],  # on the class-1 GT -> fp 'cls'
            [100, 100, 110, 110, 0.5],  # nowhere -> fp 'bg'
            [60, 60, 70, 70, 0.1],  # under the score threshold: not counted
        ],
        [],
    )
    m = match_image(GT, LABELS, result, score_thr=0.3, pos_iou_thr=0.5)
    assert (m.n_gt, m.n_det, m.tp, m.fp, m.missed, m.poor_loc) == (3, 5, 1, 3, 1, 1)
    assert m.fp_kinds == ["dup", "cls", "bg"]
    assert m.missed_labels.tolist() == [1]
    np.testing.assert_allclose(m.poor_overlaps, [0.32], rtol=1e-6)
    np.testing.assert_array_equal(m.poor_gt, GT[1:2])
    assert m.badness == 3 + 1 + 0.5
    # with pos_iou_thr 0.3 the 0.32 box is a true positive; min_pos_iou 0.4 makes it unmatched
    assert match_image(GT, LABELS, result, score_thr=0.3, pos_iou_thr=0.3).tp == 2
    strict = match_image(GT, LABELS, result, score_thr=0.3, pos_iou_thr=0.5, min_pos_iou=0.4)
    assert (strict.tp, strict.poor_loc, strict.fp, strict.missed) == (1, 0, 4, 2)
    assert strict.fp_kinds == ["dup", "bg", "cls", "bg"]  # IoU 0.32 < 0.5: not even 'dup'


def test_greedy_by_score_and_iof_mode() -> None:
    gt = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    # the higher score takes the GT it overlaps most (GT 1, IoU 1); the second gets GT 0
    dets = _res([[0, 0, 10, 10, 0.5], [5, 0, 15, 10, 0.9]], [])
    m = match_image(gt, np.array([0, 0]), dets, score_thr=0.0, pos_iou_thr=0.5)
    assert (m.tp, m.fp, m.missed) == (2, 0, 0)
    # a small box inside a GT: IoU 4 / 100 = 0.04, IoF 4 / 4 = 1
    small = _res([[2, 2, 4, 4, 0.9]], [])
    iou = match_image(gt[:1], np.array([0]), small, score_thr=0.0, pos_iou_thr=0.5)
    iof = match_image(
        gt[:1], np.array([0]), small, score_thr=0.0, pos_iou_thr=0.5, match_mode="iof"
    )
    assert (iou.tp, iou.poor_loc, iof.tp, iof.poor_loc) == (0, 1, 1, 0)
    with pytest.raises(ValueError, match="match_mode"):
        match_image(gt, np.array([0, 0]), dets, match_mode="giou")


def test_ignored_regions_and_per_class_thresholds() -> None:
    dets = _res([[100, 100, 104, 104, 0.9]], [[0, 0, 10, 10, 0.4]])
    ignore = np.array([[98, 98, 106, 106]], np.float32)
    m = match_image(GT, LABELS, dets, score_thr=0.3, gt_bboxes_ignore=ignore)
    assert (m.n_det, m.fp, m.fp_kinds) == (1, 1, ["cls"])  # the box inside the ignore is dropped
    m = match_image(GT, LABELS, dets, score_thr=np.array([0.3, 0.5]), gt_bboxes_ignore=ignore)
    assert (m.n_det, m.fp, m.missed) == (0, 0, 3)


def test_cleaning_modes() -> None:
    dets = np.array(
        [[0, 0, 10, 10, 0.9], [0, 0, 4, 10, 0.8], [0, 0, 10, 10, 0.7], [0, 0, 10, 10, 0.95]],
        np.float32,
    )
    labels = np.array([0, 0, 0, 1])
    # min: the 4x10 box lies inside the first (overlap 1); max: 40 / 100 = 0.4 < 0.5
    assert clean_detections(dets, labels, 0.5, "min").tolist() == [3, 0]
    assert clean_detections(dets, labels, 0.5, "max").tolist() == [3, 0, 1]
    assert clean_detections(dets, labels, 0.3, "max").tolist() == [3, 0]
    with pytest.raises(ValueError, match="clean_mode"):
        clean_detections(dets, labels, 0.5, "union")


def test_score_threshold_parsing_and_errors() -> None:
    assert parse_score_thr(None) == {"*": 0.3}
    assert parse_score_thr(["0.25"]) == {"*": 0.25}
    assert parse_score_thr(["a=0.5", "*=0.1"]) == {"a": 0.5, "*": 0.1}
    with pytest.raises(ValueError, match="'a=x'"):
        parse_score_thr(["a=x"])
    assert resolve_score_thr({"b": 0.7, "*": 0.2}, ["a", "b"]).tolist() == [0.2, 0.7]
    with pytest.raises(ValueError, match="unknown class 'c'"):
        resolve_score_thr({"c": 0.5}, ["a", "b"])
    anns = [dict(bboxes=GT, labels=LABELS)]
    with pytest.raises(ValueError, match="result 0 has 1 classes but the dataset has 2"):
        match_dataset(anns, [[np.zeros((0, 5))]], num_classes=2)
    with pytest.raises(ValueError, match="2 results for 1 images"):
        match_dataset(anns, [[], []], num_classes=2)
