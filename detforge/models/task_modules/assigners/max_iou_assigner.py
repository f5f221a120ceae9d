"""``MaxIoUAssigner``: assign each prior to its best-overlapping ground truth (MMDetection v2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.iou_calculators import build_iou_calculator
from detforge.registry import TASK_UTILS

__all__ = ["MaxIoUAssigner"]


def _neg_range(neg_iou_thr: float | Sequence[float]) -> tuple[float, float]:
    """``[low, high)`` IoU range of negatives: a number ``t`` means ``[0, t)``."""
    if isinstance(neg_iou_thr, Real) and not isinstance(neg_iou_thr, bool):
        return 0.0, float(neg_iou_thr)
    if isinstance(neg_iou_thr, Sequence) and len(neg_iou_thr) == 2:
        return float(neg_iou_thr[0]), float(neg_iou_thr[1])
    raise InvalidArgumentError(
        f"MaxIoUAssigner: neg_iou_thr must be a number or a (low, high) pair, got {neg_iou_thr!r}"
    )


@TASK_UTILS.register_module()
class MaxIoUAssigner:
    """Assign priors (anchors or proposals) to ground truths by IoU.

    In order: every prior starts ignored (-1); priors whose best IoU lies in the negative
    range become negatives (0); priors whose best IoU is ``>= pos_iou_thr`` take that ground
    truth; then, with ``match_low_quality``, every ground truth whose best IoU is
    ``>= min_pos_iou`` takes its best prior(s), even over an assignment made before.

    Args:
        pos_iou_thr: IoU from which a prior is positive.
        neg_iou_thr: Priors with best IoU in ``[0, t)`` (or ``[low, high)`` for a pair) are
            negatives.
        min_pos_iou: Lowest IoU for the low-quality matches.
        gt_max_assign_all: Give a ground truth every prior that ties for its best IoU (else only
            the first).
        ignore_iof_thr: Priors whose IoF with any ``gt_bboxes_ignore`` box exceeds this are
            ignored (-1); negative values disable it.
        ignore_wrt_candidates: IoF over the prior's area (True) or over the ignore box's.
        match_low_quality: Enable the low-quality matches (RPN and one-stage heads).
        gpu_assign_thr: With more ground truths than this (when > 0), compute on the CPU to
            save GPU memory and move the result back.
        iou_calculator: Config (or instance) of the IoU calculator; default
            ``dict(type='BboxOverlaps2D')``.

    Example:
        >>> assigner = MaxIoUAssigner(0.5, 0.5)
        >>> priors = torch.tensor([[0., 0., 10., 10.], [10., 10., 20., 20.]])
        >>> assigner.assign(priors, torch.tensor([[0., 0., 10., 9.]])).gt_inds.tolist()
        [1, 0]
    """

    def __init__(
        self,
        pos_iou_thr: float,
        neg_iou_thr: float | Sequence[float],
        min_pos_iou: float = 0.0,
        gt_max_assign_all: bool = True,
        ignore_iof_thr: float = -1,
        ignore_wrt_candidates: bool = True,
        match_low_quality: bool = True,
        gpu_assign_thr: int = -1,
        iou_calculator: Mapping[str, Any] | Any = None,
    ) -> None:
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        _neg_range(neg_iou_thr)  # checked now, read at each assignment (it may be changed)
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.gpu_assign_thr = gpu_assign_thr
        self.match_low_quality = match_low_quality
        self.iou_calculator = build_iou_calculator(iou_calculator)

    def assign(
        self,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``[K, 4]`` to ``bboxes`` ``[N, 4]``.

        Args:
            bboxes: Priors ``Tensor[N, 4]`` (a 5th score column is ignored).
            gt_bboxes: ``Tensor[K, 4]``.
            gt_bboxes_ignore: ``Tensor[I, 4]`` boxes to ignore (e.g. COCO crowds).
            gt_labels: ``Tensor[K]`` labels; the result then carries per-prior labels.
        """
        assign_on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        device = bboxes.device
        if assign_on_cpu:
            bboxes = bboxes.cpu()
            gt_bboxes = gt_bboxes.cpu()
            if gt_bboxes_ignore is not None:
                gt_bboxes_ignore = gt_bboxes_ignore.cpu()
            if gt_labels is not None:
                gt_labels = gt_labels.cpu()

        overlaps = self.iou_calculator(gt_bboxes, bboxes)
        if (
            self.ignore_iof_thr > 0
            and gt_bboxes_ignore is not None
            and gt_bboxes_ignore.numel() > 0
            and bboxes.numel() > 0
        ):
            if self.ignore_wrt_candidates:
                ignore_overlaps = self.iou_calculator(bboxes, gt_bboxes_ignore, mode="iof")
                ignore_max_overlaps, _ = ignore_overlaps.max(dim=1)
            else:
                ignore_overlaps = self.iou_calculator(gt_bboxes_ignore, bboxes, mode="iof")
                ignore_max_overlaps, _ = ignore_overlaps.max(dim=0)
            overlaps[:, ignore_max_overlaps > self.ignore_iof_thr] = -1

        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if assign_on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            if result.labels is not None:
                result.labels = result.labels.to(device)
        return result

    def assign_wrt_overlaps(
        self, overlaps: torch.Tensor, gt_labels: torch.Tensor | None = None
    ) -> AssignResult:
        """Assign from precomputed ``overlaps`` ``Tensor[K, N]`` (ground truths × priors)."""
        num_gts, num_bboxes = overlaps.size(0), overlaps.size(1)
        assigned_gt_inds = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)

        if num_gts == 0 or num_bboxes == 0:
            max_overlaps = overlaps.new_zeros((num_bboxes,))
            if num_gts == 0:
                assigned_gt_inds[:] = 0  # no ground truth: everything is background
            labels = (
                None
                if gt_labels is None
                else overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
            )
            return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)  # best ground truth per prior
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)  # best prior per gt

        neg_low, neg_high = _neg_range(self.neg_iou_thr)
        assigned_gt_inds[(max_overlaps >= neg_low) & (max_overlaps < neg_high)] = 0
        pos_inds = max_overlaps >= self.pos_iou_thr
        assigned_gt_inds[pos_inds] = argmax_overlaps[pos_inds] + 1

        if self.match_low_quality:
            # May overwrite step 3: a prior that is some ground truth's best match goes to that
            # ground truth even when another one overlaps it more.
            for i in range(num_gts):
                if gt_max_overlaps[i] >= self.min_pos_iou:
                    if self.gt_max_assign_all:
                        assigned_gt_inds[overlaps[i, :] == gt_max_overlaps[i]] = i + 1
                    else:
                        assigned_gt_inds[gt_argmax_overlaps[i]] = i + 1

        if gt_labels is None:
            return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=None)
        assigned_labels = assigned_gt_inds.new_full((num_bboxes,), -1)
        pos = torch.nonzero(assigned_gt_inds > 0, as_tuple=False).squeeze(1)
        if pos.numel() > 0:
            assigned_labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
        return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=assigned_labels)


@TASK_UTILS.register_module()
class AscendMaxIoUAssigner(MaxIoUAssigner):
    """v2's Ascend-NPU ``MaxIoUAssigner``: the same assignment, batched differently there."""
