"""Tests for detforge.evaluation.recall."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from detforge.evaluation.recall import eval_recalls, print_recall_summary

# mmdet-v2.md §8.3 item 7
DETS = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [32, 32, 38, 42]])
GTS = np.array([[0, 0, 10, 20], [0, 10, 10, 19], [10, 10, 20, 20]])


@pytest.mark.parametrize("legacy", [False, True])
def test_eval_recalls_literal(legacy: bool) -> None:
    recall = eval_recalls(
        [GTS, GTS, GTS], [DETS, DETS, DETS], proposal_nums=2, use_legacy_coordinate=legacy,
        logger="silent",
    )  # fmt: skip
    assert recall.shape == (1, 1)
    # gt 0 (IoU 0.5, or 0.52 legacy) and gt 2 (IoU 1) are found, gt 1 is not: 6 of 9
    assert 0.66 < recall[0, 0] < 0.667


@pytest.mark.parametrize("legacy", [False, True])
def test_eval_recalls_thresholds_and_nums(legacy: bool) -> None:
    recall = eval_recalls(
        [GTS] * 3, [DETS] * 3, proposal_nums=[1, 2, 3], iou_thrs=[0.1, 0.5, 0.9],
        use_legacy_coordinate=legacy, logger="silent",
    )  # fmt: skip
    assert recall.shape == (3, 3)
    assert np.all(np.diff(recall, axis=0) >= 0)  # more proposals never hurt
    assert np.all(np.diff(recall, axis=1) <= 0)  # stricter IoU never helps
    # one proposal per image: only gt 0 (matched first as 0,0,10,10 is proposal 0)
    assert recall[0, 1] == pytest.approx(1 / 3)
    assert recall[2, 2] == pytest.approx(1 / 3)  # at IoU 0.9 only the exact box counts


def test_eval_recalls_sorts_by_score_and_matches_one_to_one() -> None:
    gts = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]])]
    props = [np.array([[50, 50, 60, 60, 0.9], [20, 20, 30, 30, 0.1], [0, 0, 10, 10, 0.5]])]
    # best score first: the top-2 are (50,50,...) and (0,0,10,10)
    assert eval_recalls(gts, props, proposal_nums=[2, 3], logger="silent").tolist() == [
        [0.5],
        [1.0],
    ]
    # a single big proposal overlapping both gts counts for one of them only
    big = [np.array([[0, 0, 10, 10, 1.0]])]
    two_same = [np.array([[0, 0, 10, 10], [0, 0, 10, 10]])]
    assert eval_recalls(two_same, big, proposal_nums=1, logger="silent")[0, 0] == 0.5


def test_eval_recalls_empty_images_and_defaults() -> None:
    gts = [np.zeros((0, 4)), np.array([[0, 0, 10, 10]]), None]
    props = [np.array([[0, 0, 5, 5]]), np.zeros((0, 4)), np.array([[1, 1, 2, 2]])]
    assert eval_recalls(gts, props, proposal_nums=5, logger="silent")[0, 0] == 0.0
    props[1] = np.array([[0, 0, 10, 10], [3, 3, 4, 4]])
    # proposal_nums=None uses all proposals; iou_thrs=None means 0.5
    assert eval_recalls(gts, props, None, None, logger="silent").tolist() == [[1.0]]
    with pytest.raises(ValueError, match="3 images but proposals has 2"):
        eval_recalls(gts, props[:2], 1, logger="silent")
    with pytest.raises(ValueError, match=r"proposals\[0\]"):
        eval_recalls(gts[:1], [np.ones(4)], 1, logger="silent")


def test_print_recall_summary() -> None:
    recalls = np.array([[0.5, 0.25], [1.0, 0.75]])
    text = print_recall_summary(recalls, [100, 300], [0.5, 0.75], logger="silent")
    lines = text.splitlines()
    assert lines[1] == "|     | 0.5   | 0.75  |"
    assert lines[3] == "| 100 | 0.500 | 0.250 |"
    assert lines[4] == "| 300 | 1.000 | 0.750 |"
    text = print_recall_summary(recalls, [100, 300], [0.5, 0.75], row_idxs=[1], col_idxs=[1])
    assert text.splitlines()[3] == "| 300 | 0.750 |"


def test_eval_recalls_logs_table() -> None:
    logger = logging.getLogger("detforge_tests.recall")
    logger.handlers.clear()
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    eval_recalls([GTS], [DETS], proposal_nums=[1, 3], logger=logger)
    assert len(messages) == 1 and "| 3 " in messages[0] and "0.667" in messages[0]
