"""``GridAssigner``: YOLOv3's max-IoU assignment restricted to the cells holding a ground-truth
centre (MMDetection v2.28)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.iou_calculators import build_iou_calculator
from detforge.registry import TASK_UTILS

__all__ = ["GridAssigner"]


@TASK_UTILS.register_module()
class GridAssigner:
    """Assign priors to ground truths by IoU, positives only in responsible cells.

    In order (v2's comparisons, note the inclusive/exclusive bounds): every prior starts
    ignored (-1); priors whose best IoU with any ground truth is in ``[0, t]`` (or ``(low,
    high]`` for a pair) become negatives (0); then, looking at responsible priors only, those
    whose best IoU is ``> pos_iou_thr`` take that ground truth; finally each ground truth
    whose best responsible IoU is ``> min_pos_iou`` takes that prior (every tying responsible
    prior with ``gt_max_assign_all``).

    Args:
        pos_iou_thr: IoU above which a responsible prior is positive.
        neg_iou_thr: A number ``t`` (negatives in ``[0, t]``) or a ``(low, high)`` pair.
        min_pos_iou: IoU a ground truth's best responsible prior must exceed.
        gt_max_assign_all: Give a ground truth every responsible prior tying for its best IoU.
        iou_calculator: Config (or instance) of the IoU calculator.

    Example:
        >>> assigner = GridAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5)
        >>> priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 9., 10.], [20., 20., 30., 30.]])
        >>> flags = torch.tensor([False, True, True])
        >>> assigner.assign(priors, flags, torch.tensor([[0., 0., 10., 10.]])).gt_inds.tolist()
        [-1, 1, 0]
    """

    def __init__(
        self,
        pos_iou_thr: float,
        neg_iou_thr: float | Sequence[float],
        min_pos_iou: float = 0.0,
        gt_max_assign_all: bool = True,
        iou_calculator: Mapping[str, Any] | Any = None,
    ) -> None:
        if not isinstance(neg_iou_thr, int | float) and not (
            isinstance(neg_iou_thr, Sequence) and len(neg_iou_thr) == 2
        ):
            raise ValueError(
                f"GridAssigner: neg_iou_thr must be a number or a (low, high) pair, got "
                f"{neg_iou_thr!r}"
            )
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.iou_calculator = build_iou_calculator(iou_calculator)

    def assign(
        self,
        bboxes: torch.Tensor,
        box_responsible_flags: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``[K, 4]`` to ``bboxes`` ``[N, 4]``.

        Args:
            bboxes: Priors ``Tensor[N, 4]``.
            box_responsible_flags: ``Tensor[N]``: the prior's cell holds a ground-truth centre.
            gt_bboxes: ``Tensor[K, 4]``.
            gt_labels: ``Tensor[K]``; the result then carries per-prior labels.
        """
        num_gts, num_bboxes = gt_bboxes.size(0), bboxes.size(0)
        overlaps = self.iou_calculator(gt_bboxes, bboxes)
        assigned = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
        if num_gts == 0 or num_bboxes == 0:
            if num_gts == 0:
                assigned[:] = 0
            labels = None if gt_labels is None else assigned.new_full((num_bboxes,), -1)
            return AssignResult(num_gts, assigned, overlaps.new_zeros((num_bboxes,)), labels)

        max_overlaps, _ = overlaps.max(dim=0)
        if isinstance(self.neg_iou_thr, int | float):
            assigned[(max_overlaps >= 0) & (max_overlaps <= self.neg_iou_thr)] = 0
        else:
            low, high = self.neg_iou_thr
            assigned[(max_overlaps > low) & (max_overlaps <= high)] = 0

        responsible = box_responsible_flags.bool()
        overlaps[:, ~responsible] = -1.0
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
        pos = (max_overlaps > self.pos_iou_thr) & responsible
        assigned[pos] = argmax_overlaps[pos] + 1
        for i in range(num_gts):
            if gt_max_overlaps[i] > self.min_pos_iou:
                if self.gt_max_assign_all:
                    assigned[(overlaps[i, :] == gt_max_overlaps[i]) & responsible] = i + 1
                elif responsible[gt_argmax_overlaps[i]]:
                    assigned[gt_argmax_overlaps[i]] = i + 1

        labels = None
        if gt_labels is not None:
            labels = assigned.new_full((num_bboxes,), -1)
            positive = assigned > 0
            labels[positive] = gt_labels[assigned[positive] - 1]
        return AssignResult(num_gts, assigned, max_overlaps, labels=labels)

    def __repr__(self) -> str:
        return (
            f"GridAssigner(pos_iou_thr={self.pos_iou_thr}, neg_iou_thr={self.neg_iou_thr}, "
            f"min_pos_iou={self.min_pos_iou}, gt_max_assign_all={self.gt_max_assign_all})"
        )
