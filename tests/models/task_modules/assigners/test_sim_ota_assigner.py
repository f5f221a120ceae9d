"""``SimOTAAssigner``: candidates, dynamic k, conflicts and the empty cases, on literal numbers."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.assigners import SimOTAAssigner
from detforge.models.task_modules.assigners.sim_ota_assigner import (
    dynamic_k_matching,
    sim_ota_candidates,
)


def _grid() -> torch.Tensor:
    """A 4x4 grid of stride-8 cell centres: ``[16, 4]``."""
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    pts = torch.stack([xs.flatten() * 8 + 4, ys.flatten() * 8 + 4], 1)
    return torch.cat([pts, torch.full_like(pts, 8.0)], 1)


def test_candidates_are_inside_the_box_or_its_centre_square() -> None:
    priors = _grid()
    gt = torch.tensor([[0.0, 0.0, 14.0, 14.0]])  # centre (7, 7)
    cand, both = sim_ota_candidates(priors, gt, center_radius=0.5)
    # inside the box: centres 4 and 12 (cells 0, 1, 4, 5); the square 3..11 holds cell 0 only
    assert cand.nonzero().flatten().tolist() == [0, 1, 4, 5]
    assert both.flatten().tolist() == [True, False, False, False]
    cand, both = sim_ota_candidates(priors, gt, center_radius=2.0)  # square -9..23: 9 cells
    assert int(cand.sum()) == 9 and int(both.sum()) == 4


def test_dynamic_k_is_the_floor_of_the_top_iou_sum_and_conflicts_go_to_the_cheapest() -> None:
    cost = torch.tensor([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [4.0, 0.5]])
    ious = torch.tensor([[0.9, 0.5], [0.9, 0.5], [0.6, 0.5], [0.1, 0.6]])
    # gt 0: k = int(2.5) = 2 -> priors 0, 1; gt 1: k = int(2.1) = 2 -> priors 3, 1
    positive, gt, iou = dynamic_k_matching(cost, ious, candidate_topk=10)
    assert positive.tolist() == [True, True, False, True]
    assert gt.tolist() == [0, 1, 1]  # prior 1 was claimed twice: gt 1 is cheaper
    assert iou.tolist() == pytest.approx([0.9, 0.5, 0.6])
    _, gt, _ = dynamic_k_matching(cost, ious, candidate_topk=1)  # k = 1 each
    assert gt.tolist() == [0, 1]


def test_assign_labels_overlaps_and_empty_cases() -> None:
    priors = _grid()
    preds = torch.cat([priors[:, :2] - 4, priors[:, :2] + 4], 1)  # each cell's own box
    scores = torch.full((16, 3), 0.1)
    gt = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    result = SimOTAAssigner(center_radius=2.5).assign(scores, priors, preds, gt, torch.tensor([2]))
    # four predictions have IoU 0.25 with the gt, the others 0: k = int(1.0) = 1
    pos = (result.gt_inds > 0).nonzero().flatten().tolist()
    assert len(pos) == 1 and set(pos) <= {0, 1, 4, 5}
    assert result.labels[pos].tolist() == [2]
    assert result.max_overlaps[pos].tolist() == pytest.approx([0.25])
    assert float(result.max_overlaps[result.gt_inds == 0].max()) == -1e5
    empty = SimOTAAssigner().assign(
        scores, priors, preds, gt[:0], torch.tensor([], dtype=torch.long)
    )
    assert empty.gt_inds.tolist() == [0] * 16 and empty.labels.tolist() == [-1] * 16
    far = SimOTAAssigner().assign(
        scores, priors, preds, torch.tensor([[500.0, 500.0, 510.0, 510.0]]), torch.tensor([0])
    )
    assert far.num_gts == 1 and int((far.gt_inds > 0).sum()) == 0
    with pytest.raises(ValueError, match="center_radius"):
        SimOTAAssigner(center_radius=0)
