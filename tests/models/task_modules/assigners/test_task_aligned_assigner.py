"""``TaskAlignedAssigner`` on literal numbers (its numbers in TOOD are in the golden test)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.assigners import TaskAlignedAssigner


def test_metric_topk_centre_inside_and_highest_iou_wins() -> None:
    assigner = TaskAlignedAssigner(topk=2)
    # priors 0 and 1 sit in both ground truths; prior 2's centre (25, 5) is outside gt 0
    priors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0], [20.0, 0.0, 30.0, 10.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 12.0, 10.0], [0.0, 0.0, 30.0, 10.0]])
    gts = torch.tensor([[0.0, 0.0, 12.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([[0.5, 0.2], [0.5, 0.2], [0.9, 0.2]])
    result = assigner.assign(scores, boxes, priors, gts, gt_labels=torch.tensor([0, 1]))
    # gt 0's top-2 metrics are priors 1 (IoU 1) and 0 (IoU 10/12); prior 2 is outside it.
    # prior 0 overlaps gt 1 exactly (IoU 1 > 10/12), so gt 1 takes it
    assert result.gt_inds.tolist() == [2, 1, 0]
    assert result.labels is not None and result.labels.tolist() == [1, 0, -1]
    metrics = result.get_extra_property("assign_metrics")
    assert metrics.tolist() == pytest.approx([0.2, 0.5, 0.0])
    assert result.max_overlaps[:2].tolist() == pytest.approx([1.0, 1.0])


def test_no_ground_truth_assigns_background_and_zero_metrics() -> None:
    assigner = TaskAlignedAssigner(topk=3)
    priors = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    result = assigner.assign(
        torch.ones(1, 2), priors, priors, torch.zeros(0, 4), gt_labels=torch.zeros(0).long()
    )
    assert result.gt_inds.tolist() == [0]
    assert result.labels is not None and result.labels.tolist() == [-1]
    assert result.get_extra_property("assign_metrics").tolist() == [0.0]


def test_bad_topk_and_missing_labels_are_errors() -> None:
    with pytest.raises(ValueError, match="topk must be positive"):
        TaskAlignedAssigner(topk=0)
    priors = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    with pytest.raises(ValueError, match="needs gt_labels"):
        TaskAlignedAssigner(topk=1).assign(torch.ones(1, 1), priors, priors, priors)
