"""HungarianAssigner: a cost matrix worked out by hand, the matching, and empty inputs."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.assigners import HungarianAssigner
from detforge.registry import TASK_UTILS, build_module

# A 200-wide, 100-high image; truth 0 is its top-left quarter, truth 1 its bottom-right.
_META = dict(img_shape=(100, 200, 3))
_GTS = torch.tensor([[0.0, 0.0, 100.0, 50.0], [100.0, 50.0, 200.0, 100.0]])
_LABELS = torch.tensor([3, 1])
# normalised cx, cy, w, h: exactly truth 1, exactly truth 0, a small box in the middle
_PREDS = torch.tensor([[0.75, 0.75, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2]])
_LOGITS = torch.zeros(3, 4)


def test_cost_matrix_normalises_by_img_shape() -> None:
    # cls: -softmax = -0.25 everywhere. L1 of corners (truths / [200, 100, 200, 100]):
    # [[2, 0], [0, 2], [1, 1]]. GIoU in pixels: exact matches 1, the two quarters -0.5, the
    # middle box [80, 40, 120, 60] with either truth 200/5600 - 1600/7200.
    giou_mid = 200 / 5600 - 1600 / 7200
    expected = torch.tensor(
        [
            [2.0 + 0.5 - 0.25, 0.0 - 1.0 - 0.25],
            [0.0 - 1.0 - 0.25, 2.0 + 0.5 - 0.25],
            [1.0 - giou_mid - 0.25, 1.0 - giou_mid - 0.25],
        ]
    )
    cost = HungarianAssigner().cost_matrix(_PREDS, _LOGITS, _GTS, _LABELS, _META)
    torch.testing.assert_close(cost, expected, atol=1e-5, rtol=0)


def test_assign_matches_one_to_one_and_copies_labels() -> None:
    result = HungarianAssigner().assign(_PREDS, _LOGITS, _GTS, _LABELS, _META)
    assert result.num_gts == 2
    assert result.gt_inds.tolist() == [2, 1, 0]
    assert result.labels is not None
    assert result.labels.tolist() == [1, 3, -1]


def test_class_cost_can_outweigh_boxes() -> None:
    # Sparse R-CNN's costs; query 2 is sure of class 3 and class 1, queries 0/1 of nothing.
    assigner = build_module(
        dict(
            type="HungarianAssigner",
            cls_cost=dict(type="FocalLossCost", weight=100.0),
            reg_cost=dict(type="BBoxL1Cost", weight=5.0),
            iou_cost=dict(type="IoUCost", iou_mode="giou", weight=2.0),
        ),
        TASK_UTILS,
    )
    logits = torch.full((3, 4), -10.0)
    logits[2, 3] = 10.0
    result = assigner.assign(_PREDS, logits, _GTS, _LABELS, _META)
    assert result.gt_inds.tolist() == [2, 0, 1]
    assert result.labels is not None
    assert result.labels.tolist() == [1, -1, 3]


def test_no_truths_or_no_queries() -> None:
    empty = HungarianAssigner().assign(_PREDS, _LOGITS, _GTS[:0], _LABELS[:0], _META)
    assert empty.gt_inds.tolist() == [0, 0, 0]
    assert empty.labels is not None
    assert empty.labels.tolist() == [-1, -1, -1]
    none = HungarianAssigner().assign(_PREDS[:0], _LOGITS[:0], _GTS, _LABELS, _META)
    assert none.num_gts == 2
    assert none.gt_inds.shape == (0,)


def test_more_truths_than_queries_leaves_truths_unmatched() -> None:
    result = HungarianAssigner().assign(_PREDS[:1], _LOGITS[:1], _GTS, _LABELS, _META)
    assert result.gt_inds.tolist() == [2]


def test_ignored_boxes_are_refused() -> None:
    with pytest.raises(ValueError, match="gt_bboxes_ignore is not supported, got 2 boxes"):
        HungarianAssigner().assign(_PREDS, _LOGITS, _GTS, _LABELS, _META, gt_bboxes_ignore=_GTS)
    empty = HungarianAssigner().assign(
        _PREDS, _LOGITS, _GTS, _LABELS, _META, gt_bboxes_ignore=_GTS[:0]
    )
    assert empty.gt_inds.tolist() == [2, 1, 0]
