"""``TaskAlignedAssigner``: TOOD's task-aligned assignment (Feng et al. 2021), MMDetection v2.28.

Every (prior, ground truth) pair gets the alignment metric ``s ** alpha * u ** beta``: ``s`` the
predicted probability of the ground truth's class, ``u`` the IoU of the predicted box with the
ground truth (both detached). Per ground truth the ``topk`` priors with the largest metric (over
all levels) are candidates; those with a positive metric whose centre lies inside the box by
more than 0.01 px become positives. A prior claimed by several ground truths goes to the one its
predicted box overlaps most. ``max_overlaps`` is that IoU (-100000000 where none), and the extra
property ``assign_metrics`` the winning pair's metric (0 elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.iou_calculators import BboxOverlaps2D  # noqa: F401 (registers it)
from detforge.registry import TASK_UTILS, build_module

__all__ = ["TaskAlignedAssigner"]

_INF = 100000000
_IOU: Mapping[str, Any] = {"type": "BboxOverlaps2D"}


@TASK_UTILS.register_module()
class TaskAlignedAssigner:
    """Assign priors to ground truths by the task-alignment metric (see the module docstring).

    Args:
        topk: Candidates per ground truth (fewer when there are fewer priors).
        iou_calculator: Config (or instance) of the IoU calculator.

    Raises:
        ValueError: ``topk`` is not positive.

    Example:
        >>> assigner = TaskAlignedAssigner(topk=2)
        >>> priors = torch.tensor([[0., 0., 10., 10.], [10., 0., 20., 10.], [0., 0., 4., 4.]])
        >>> scores = torch.tensor([[0.9], [0.9], [0.1]])
        >>> gt = torch.tensor([[0., 0., 10., 10.]])
        >>> result = assigner.assign(scores, priors, priors, gt, gt_labels=torch.tensor([0]))
        >>> metrics = result.get_extra_property('assign_metrics')
        >>> result.gt_inds.tolist(), [round(m, 7) for m in metrics.tolist()]  # 0.1 * 0.16 ** 6
        ([1, 0, 1], [0.9, 0.0, 1.7e-06])
    """

    def __init__(self, topk: int, iou_calculator: Mapping[str, Any] | Any = _IOU) -> None:
        if int(topk) < 1:
            raise ValueError(f"TaskAlignedAssigner: topk must be positive, got {topk!r}")
        self.topk = int(topk)
        self.iou_calculator = build_module(iou_calculator, TASK_UTILS)

    def assign(
        self,
        pred_scores: torch.Tensor,
        decode_bboxes: torch.Tensor,
        anchors: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
        alpha: float = 1,
        beta: float = 6,
    ) -> AssignResult:
        """Assign each prior (see the module docstring).

        Args:
            pred_scores: ``Tensor[N, C]`` class probabilities.
            decode_bboxes: ``Tensor[N, 4]`` predicted boxes.
            anchors: ``Tensor[N, 4+]`` priors (their centres must lie in the boxes).
            gt_bboxes: ``Tensor[K, 4]``.
            gt_bboxes_ignore: Unused (v2 ignores it too).
            gt_labels: ``Tensor[K]``; needed for the class scores.
            alpha: Exponent of the class score.
            beta: Exponent of the IoU.

        Raises:
            ValueError: there are ground truths but no ``gt_labels``.
        """
        anchors = anchors[:, :4]
        num_gt, num_bboxes = gt_bboxes.size(0), anchors.size(0)
        assigned_gt_inds = anchors.new_zeros((num_bboxes,), dtype=torch.long)
        assign_metrics = anchors.new_zeros((num_bboxes,))
        if num_gt == 0 or num_bboxes == 0:
            labels = None if gt_labels is None else assigned_gt_inds.new_full((num_bboxes,), -1)
            result = AssignResult(
                num_gt, assigned_gt_inds, anchors.new_zeros((num_bboxes,)), labels=labels
            )
            result.set_extra_property("assign_metrics", assign_metrics)
            return result
        if gt_labels is None:
            raise ValueError("TaskAlignedAssigner needs gt_labels to score the priors")
        overlaps = self.iou_calculator(decode_bboxes, gt_bboxes).detach()
        bbox_scores = pred_scores[:, gt_labels].detach()
        alignment_metrics = bbox_scores**alpha * overlaps**beta
        topk = min(self.topk, num_bboxes)
        _, candidate_idxs = alignment_metrics.topk(topk, dim=0, largest=True)
        gt_range = torch.arange(num_gt, device=anchors.device)
        is_pos = alignment_metrics[candidate_idxs, gt_range] > 0

        # the candidates' centres must lie inside their ground truth
        cx = (anchors[:, 0] + anchors[:, 2]) / 2.0
        cy = (anchors[:, 1] + anchors[:, 3]) / 2.0
        ccx, ccy = cx[candidate_idxs], cy[candidate_idxs]  # [topk, K]
        sides = torch.stack(
            [
                ccx - gt_bboxes[:, 0],
                ccy - gt_bboxes[:, 1],
                gt_bboxes[:, 2] - ccx,
                gt_bboxes[:, 3] - ccy,
            ],
            dim=1,
        )
        is_pos = is_pos & (sides.min(dim=1).values > 0.01)

        # a prior claimed by several ground truths goes to the one it overlaps most
        flat = (candidate_idxs + gt_range * num_bboxes).view(-1)[is_pos.view(-1)]
        overlaps_inf = torch.full_like(overlaps, -_INF).t().contiguous().view(-1)
        overlaps_inf[flat] = overlaps.t().contiguous().view(-1)[flat]
        overlaps_inf = overlaps_inf.view(num_gt, -1).t()
        max_overlaps, argmax_overlaps = overlaps_inf.max(dim=1)
        pos = max_overlaps != -_INF
        assigned_gt_inds[pos] = argmax_overlaps[pos] + 1
        assign_metrics[pos] = alignment_metrics[pos, argmax_overlaps[pos]]
        assigned_labels = assigned_gt_inds.new_full((num_bboxes,), -1)
        assigned_labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
        result = AssignResult(num_gt, assigned_gt_inds, max_overlaps, labels=assigned_labels)
        result.set_extra_property("assign_metrics", assign_metrics)
        return result
