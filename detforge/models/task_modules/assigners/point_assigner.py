"""``PointAssigner``: RepPoints' initial-stage assignment of points to ground truths (v2.28).

Each ground truth goes to one pyramid level: ``int((log2(w / scale) + log2(h / scale)) / 2)``,
clamped to the levels present (a point's level is ``log2`` of its stride). Of that level's
points, the ``pos_num`` nearest to the box centre (distance normalised by the box size) become
its positives, unless a previously processed box is nearer to them (ground truths are visited
in order; a nearer later box takes a point over).
"""

from __future__ import annotations

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.registry import TASK_UTILS

__all__ = ["PointAssigner"]


@TASK_UTILS.register_module()
class PointAssigner:
    """Assign points to ground truths by level and centre distance (see the module docstring).

    Args:
        scale: Box size (px) that maps to level 0 (stride 1): RepPoints' ``point_base_scale``.
        pos_num: Positive points per ground truth.

    Example:
        >>> points = torch.tensor([[4., 4., 8.], [12., 4., 8.], [8., 8., 16.]])
        >>> result = PointAssigner(scale=4, pos_num=1).assign(
        ...     points, torch.tensor([[0., 0., 16., 10.]]), gt_labels=torch.tensor([3]))
        >>> result.gt_inds.tolist(), result.labels.tolist()
        ([1, 0, 0], [3, -1, -1])
    """

    def __init__(self, scale: int = 4, pos_num: int = 3) -> None:
        self.scale = scale
        self.pos_num = pos_num

    def assign(
        self,
        points: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``points [n, 3]`` (x, y, stride) to ``gt_bboxes [k, 4]``.

        ``gt_inds`` is 0 for background and the 1-based ground-truth index otherwise;
        ``max_overlaps`` is all zeros (no IoU is computed); ignored boxes are unused (v2).
        """
        num_points, num_gts = points.shape[0], gt_bboxes.shape[0]
        no_overlaps = points.new_zeros((num_points,))
        if num_gts == 0 or num_points == 0:
            gt_inds = points.new_zeros((num_points,), dtype=torch.long)
            labels = None if gt_labels is None else torch.full_like(gt_inds, -1)
            return AssignResult(num_gts, gt_inds, no_overlaps, labels=labels)
        points_xy = points[:, :2]
        points_lvl = torch.log2(points[:, 2]).int()
        lvl_min, lvl_max = points_lvl.min(), points_lvl.max()
        gt_xy = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2
        gt_wh = (gt_bboxes[:, 2:] - gt_bboxes[:, :2]).clamp(min=1e-6)
        gt_lvl = (
            (torch.log2(gt_wh[:, 0] / self.scale) + torch.log2(gt_wh[:, 1] / self.scale)) / 2
        ).int()
        gt_lvl = torch.clamp(gt_lvl, min=lvl_min, max=lvl_max)
        gt_inds = points.new_zeros((num_points,), dtype=torch.long)
        gt_dist = points.new_full((num_points,), float("inf"))
        points_range = torch.arange(num_points, device=points.device)
        for idx in range(num_gts):
            in_level = gt_lvl[idx] == points_lvl
            level_index = points_range[in_level]
            dist = ((points_xy[in_level] - gt_xy[[idx]]) / gt_wh[[idx]]).norm(dim=1)
            min_dist, min_index = torch.topk(dist, self.pos_num, largest=False)
            nearest = level_index[min_index]
            closer = min_dist < gt_dist[nearest]
            gt_inds[nearest[closer]] = idx + 1
            gt_dist[nearest[closer]] = min_dist[closer]
        labels = None
        if gt_labels is not None:
            labels = torch.full_like(gt_inds, -1)
            pos = gt_inds > 0
            labels[pos] = gt_labels[gt_inds[pos] - 1]
        return AssignResult(num_gts, gt_inds, no_overlaps, labels=labels)
