"""CenterRegionAssigner: FSAF's core/shadow regions, smaller boxes first, crowds ignored."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.assigners import CenterRegionAssigner

# 1x1 priors on the centres 0.5 .. 9.5 of a 10x10 grid (row-major: index = 10 * y + x)
_GRID = torch.stack(
    torch.meshgrid(torch.arange(10.0), torch.arange(10.0), indexing="xy"), -1
).reshape(-1, 2)
PRIORS = torch.cat([_GRID, _GRID + 1], dim=1)


def _cell(x: int, y: int) -> int:
    return 10 * y + x


def test_core_positive_shadow_ignored_for_its_class() -> None:
    assigner = CenterRegionAssigner(pos_scale=0.2, neg_scale=0.6, min_pos_iof=0.01)
    result = assigner.assign(
        PRIORS, torch.tensor([[0.0, 0.0, 10.0, 10.0]]), None, torch.tensor([3])
    )
    # core: the box scaled by 0.2 about (5, 5) is [4, 6]: the cells with x, y in {4, 5}
    pos = set((result.gt_inds == 1).nonzero().view(-1).tolist())
    assert pos == {_cell(4, 4), _cell(5, 4), _cell(4, 5), _cell(5, 5)}
    assert set(result.labels[list(pos)].tolist()) == {3}
    shadowed = result.get_extra_property("shadowed_labels")
    # shadow [2, 8] minus the core: 36 - 4 cells, each ignored for class 3
    assert shadowed.shape == (32, 2) and set(shadowed[:, 1].tolist()) == {3}
    assert not pos & set(shadowed[:, 0].tolist())
    assert (result.gt_inds[shadowed[:, 0]] == 0).all()


def test_overlapping_cores_go_to_the_smaller_box_and_crowds_are_ignored() -> None:
    assigner = CenterRegionAssigner(pos_scale=1.0, neg_scale=1.0)
    gts = torch.tensor([[0.0, 0.0, 6.0, 6.0], [2.0, 2.0, 4.0, 4.0]])
    crowd = torch.tensor([[6.0, 6.0, 10.0, 10.0]])
    result = assigner.assign(PRIORS, gts, crowd, torch.tensor([0, 1]))
    assert result.gt_inds[_cell(2, 2)] == 2 and result.gt_inds[_cell(0, 0)] == 1
    # the cell lost by the big box is shadowed for its class
    shadowed = result.get_extra_property("shadowed_labels").tolist()
    assert [_cell(2, 2), 0] in shadowed
    # the crowd scaled by 0.5 is [7, 9]: centres 7.5 and 8.5 are ignored
    assert result.gt_inds[_cell(7, 7)] == -1 and result.gt_inds[_cell(9, 9)] == 0


def test_same_class_clash_is_background_unless_foreground_dominates() -> None:
    gts = torch.tensor([[0.0, 0.0, 6.0, 6.0], [2.0, 2.0, 4.0, 4.0]])
    labels = torch.tensor([1, 1])
    plain = CenterRegionAssigner(pos_scale=1.0, neg_scale=1.0).assign(PRIORS, gts, None, labels)
    assert plain.gt_inds[_cell(2, 2)] == 0 and plain.labels[_cell(2, 2)] == -1
    dominant = CenterRegionAssigner(pos_scale=1.0, neg_scale=1.0, foreground_dominate=True)
    result = dominant.assign(PRIORS, gts, None, labels)
    assert result.gt_inds[_cell(2, 2)] == 2 and result.labels[_cell(2, 2)] == 1
    assert _cell(2, 2) not in result.get_extra_property("shadowed_labels")[:, 0].tolist()


def test_no_ground_truth_and_bad_priors() -> None:
    result = CenterRegionAssigner(0.2, 0.2).assign(
        PRIORS, torch.zeros(0, 4), None, torch.zeros(0, dtype=torch.long)
    )
    assert (result.gt_inds == 0).all() and result.get_extra_property("shadowed_labels").shape == (
        0,
        2,
    )
    with pytest.raises(ValueError, match=r"bboxes must be \[n, 4\]"):
        CenterRegionAssigner(0.2, 0.2).assign(torch.zeros(3, 5), torch.zeros(1, 4))
