"""``ApproxMaxIoUAssigner``: max-IoU assignment of square anchors by the best IoU among their
approximating anchors (Guided Anchoring, SABL; MMDetection v2.28)."""

from __future__ import annotations

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.assigners.max_iou_assigner import MaxIoUAssigner
from detforge.registry import TASK_UTILS

__all__ = ["ApproxMaxIoUAssigner"]


@TASK_UTILS.register_module()
class ApproxMaxIoUAssigner(MaxIoUAssigner):
    """Each square anchor stands for ``approxs_per_octave`` approximating anchors (scales and
    ratios at the same position); its overlap with a ground truth is their highest IoU, then
    :class:`MaxIoUAssigner`'s rules apply (crowd boxes are matched against the squares).

    Takes :class:`MaxIoUAssigner`'s arguments.

    Example:
        >>> assigner = ApproxMaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.4)
        >>> squares = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]])
        >>> approxs = torch.tensor([[0., 0., 10., 10.], [0., 0., 20., 5.],
        ...                         [20., 20., 30., 30.], [15., 25., 35., 30.]])
        >>> assigner.assign(approxs, squares, 2, torch.tensor([[0., 0., 20., 6.]])).gt_inds
        tensor([1, 0])
    """

    def assign(  # type: ignore[override]  # v2's signature: approxs, squares, group size
        self,
        approxs: torch.Tensor,
        squares: torch.Tensor,
        approxs_per_octave: int,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``[k, 4]`` to ``squares`` ``[n, 4]``; ``approxs`` is
        ``[n * approxs_per_octave, 4]``, the approximating anchors of each square in a row."""
        num_squares, num_gts = squares.size(0), gt_bboxes.size(0)
        if num_squares == 0 or num_gts == 0:
            return self.assign_wrt_overlaps(approxs.new_zeros(num_gts, num_squares), gt_labels)
        grouped = approxs.view(num_squares, approxs_per_octave, 4).transpose(0, 1)
        device = approxs.device
        on_cpu = self.gpu_assign_thr > 0 and num_gts > self.gpu_assign_thr
        if on_cpu:
            grouped, squares, gt_bboxes = grouped.cpu(), squares.cpu(), gt_bboxes.cpu()
            if gt_bboxes_ignore is not None:
                gt_bboxes_ignore = gt_bboxes_ignore.cpu()
            if gt_labels is not None:
                gt_labels = gt_labels.cpu()
        all_overlaps = self.iou_calculator(grouped.reshape(-1, 4), gt_bboxes)
        overlaps = all_overlaps.view(approxs_per_octave, num_squares, num_gts).max(dim=0)[0].t()
        if (
            self.ignore_iof_thr > 0
            and gt_bboxes_ignore is not None
            and gt_bboxes_ignore.numel() > 0
            and squares.numel() > 0
        ):
            if self.ignore_wrt_candidates:
                ignore = self.iou_calculator(squares, gt_bboxes_ignore, mode="iof").max(dim=1)[0]
            else:
                ignore = self.iou_calculator(gt_bboxes_ignore, squares, mode="iof").max(dim=0)[0]
            overlaps[:, ignore > self.ignore_iof_thr] = -1
        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            if result.labels is not None:
                result.labels = result.labels.to(device)
        return result
