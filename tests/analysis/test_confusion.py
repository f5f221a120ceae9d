"""The confusion-matrix algorithm on hand-made boxes (v2's rules, counted by hand)."""

from __future__ import annotations

import numpy as np

from detforge.analysis.confusion import analyze_per_img_dets, calculate_confusion_matrix


def _dets(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 5)


def test_one_image_with_every_kind_of_outcome() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [100, 100, 110, 110]])
    labels = np.array([0, 1, 1, 2])
    result = [
        _dets((0, 0, 10, 10, 0.9), (60, 60, 70, 70, 0.8)),  # TP of gt0; a background FP
        _dets((0, 0, 10, 11, 0.7), (20, 0, 30, 10, 0.2)),  # class 1 on gt0; gt1 below score
        _dets(),
    ]
    matrix = np.zeros((4, 4))
    analyze_per_img_dets(matrix, gt, labels, result, score_thr=0.3, tp_iou_thr=0.5)
    expected = np.array(
        [
            [1, 1, 0, 0],  # gt0 found as class 0 and also claimed by the class-1 box
            [0, 0, 0, 2],  # gt1 (score too low) and gt2 missed
            [0, 0, 0, 1],  # gt3 missed
            [1, 0, 0, 0],  # the box on empty background
        ]
    )
    np.testing.assert_array_equal(matrix, expected)


def test_a_detection_overlapping_two_gts_counts_for_both_and_nms_dedupes() -> None:
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])  # duplicated GT box, two classes
    labels = np.array([0, 1])
    dup = _dets((0, 0, 10, 10, 0.9), (0, 0, 10, 10.5, 0.8))  # two near-identical boxes
    matrix = calculate_confusion_matrix(
        [dict(bboxes=gt, labels=labels)], [[dup, _dets()]], num_classes=2, score_thr=0.3
    )
    # each class-0 box matches both GTs: (0, 0) twice, (1, 0) twice; gt1 never found as 1
    np.testing.assert_array_equal(matrix, [[2, 0, 0], [2, 0, 1], [0, 0, 0]])
    matrix = calculate_confusion_matrix(
        [dict(bboxes=gt, labels=labels)], [([dup, _dets()], None)], num_classes=2,
        score_thr=0.3, nms_iou_thr=0.5,
    )  # fmt: skip
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [1, 0, 1], [0, 0, 0]])
