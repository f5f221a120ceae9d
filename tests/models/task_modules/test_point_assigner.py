"""PointAssigner: level choice, nearest points, later nearer boxes take points over."""

from __future__ import annotations

import torch

from detforge.models.task_modules.assigners import PointAssigner


def _grid(stride: int, size: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    xy = torch.stack([xs.flatten(), ys.flatten()], 1).float() * stride
    return torch.cat([xy, torch.full((len(xy), 2), float(stride))], 1)


def test_levels_nearest_points_and_take_over() -> None:
    points = torch.cat([_grid(8, 8), _grid(16, 4)])  # levels 3 and 4
    gts = torch.tensor(
        [
            [0.0, 0.0, 34.0, 34.0],  # sqrt(8.5 * 8.5) ~ 4 * 2^1: level 1, clamped to 3
            [10.0, 10.0, 22.0, 22.0],  # level 3 too, centred on the point (16, 16)
            [0.0, 0.0, 200.0, 200.0],  # level int(log2(50)) = 5, clamped to 4
        ]
    )
    labels = torch.tensor([5, 6, 7])
    result = PointAssigner(scale=4, pos_num=1).assign(points, gts, gt_labels=labels)
    inds = result.gt_inds
    assert inds[2 * 8 + 2] == 2  # the first box's nearest point, taken over by the nearer second
    assert (inds == 1).sum() == 0 and (inds == 2).sum() == 1
    assert inds[64 + 3 * 4 + 3] == 3 and (inds == 3).sum() == 1  # (48, 48) on level 4
    assert result.labels[inds > 0].tolist() == [6, 7]
    first_alone = PointAssigner(scale=4, pos_num=1).assign(points, gts[:1])
    assert first_alone.gt_inds[2 * 8 + 2] == 1 and first_alone.labels is None
    empty = PointAssigner().assign(points, torch.zeros(0, 4), gt_labels=torch.zeros(0).long())
    assert empty.gt_inds.sum() == 0 and (empty.labels == -1).all()
