"""GridAssigner: v2's bounds (negatives ``<= t``, positives ``> pos_iou_thr``) and the
responsible-cell restriction."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.assigners import GridAssigner

PRIORS = torch.tensor(
    [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 10.0, 5.0], [50.0, 50, 60, 60]]
)
GT = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # IoUs 1, 0.5, 0.5, 0


def test_negatives_include_the_threshold_and_positives_need_responsibility() -> None:
    flags = torch.tensor([False, True, True, True])
    result = GridAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5).assign(PRIORS, flags, GT)
    # prior 0 (IoU 1) is not responsible: it stays ignored; IoU 0.5 is not > 0.5 but prior 1
    # is the ground truth's best responsible prior (ties: every one with gt_max_assign_all)
    assert result.gt_inds.tolist() == [-1, 1, 1, 0]
    assert result.max_overlaps.tolist() == [-1.0, 0.5, 0.5, 0.0]


def test_pair_threshold_and_labels() -> None:
    flags = torch.ones(4, dtype=torch.bool)
    assigner = GridAssigner(pos_iou_thr=0.9, neg_iou_thr=(0.0, 0.5), gt_max_assign_all=False)
    result = assigner.assign(PRIORS, flags, GT, gt_labels=torch.tensor([7]))
    # IoU 0 is not in (0, 0.5]: ignored
    assert result.gt_inds.tolist() == [1, 0, 0, -1]
    assert result.labels is not None and result.labels.tolist() == [7, -1, -1, -1]


def test_no_ground_truth_makes_every_prior_negative() -> None:
    result = GridAssigner(0.5, 0.5).assign(PRIORS, torch.ones(4), torch.zeros(0, 4))
    assert result.gt_inds.tolist() == [0, 0, 0, 0]


def test_bad_neg_iou_thr_is_named() -> None:
    with pytest.raises(ValueError, match=r"neg_iou_thr must be a number or a \(low, high\)"):
        GridAssigner(0.5, neg_iou_thr=(0.1, 0.2, 0.3))
