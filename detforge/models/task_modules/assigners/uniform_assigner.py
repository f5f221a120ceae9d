"""``UniformAssigner``: YOLOF's uniform matching (MMDetection v2.28), every ground truth takes
the same number of anchors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.iou_calculators import build_iou_calculator
from detforge.registry import TASK_UTILS
from detforge.structures.bbox import bbox_xyxy_to_cxcywh

__all__ = ["UniformAssigner"]


@TASK_UTILS.register_module()
class UniformAssigner:
    """Each ground truth takes its ``match_times`` nearest predicted boxes and its
    ``match_times`` nearest anchors (L1 distance of ``(cx, cy, w, h)``).

    In order: every anchor starts negative (0); anchors whose predicted box overlaps some
    ground truth by more than ``neg_ignore_thr`` are ignored (-1); then the matched anchors take
    their ground truth, or are ignored when the anchor's IoU with it is below
    ``pos_ignore_thr`` (an anchor matched twice keeps the later match, as in v2).
    ``gt_bboxes_ignore`` is not used.

    The result carries, per match (``2 * match_times * num_gts``, match rank-major), the extra
    properties ``pos_idx`` (not ignored), ``pos_predicted_boxes`` and ``target_boxes``, from
    which YOLOF computes its box loss; ``max_overlaps`` is v2's per-ground-truth best anchor
    IoU.

    Args:
        pos_ignore_thr: Matches whose anchor IoU is below this are ignored.
        neg_ignore_thr: Anchors whose predicted box has an IoU above this are not negatives.
        match_times: Anchors matched per ground truth, by each of the two distances.
        iou_calculator: Config (or instance) of the IoU calculator.

    Example:
        >>> assigner = UniformAssigner(0.15, 0.7, match_times=1)
        >>> anchors = torch.tensor([[0., 0., 10., 10.], [20., 20., 40., 40.], [0., 0., 4., 4.]])
        >>> preds = torch.tensor([[50., 50., 60., 60.], [0., 0., 9., 9.], [30., 30., 38., 38.]])
        >>> result = assigner.assign(preds, anchors, torch.tensor([[0., 0., 9., 9.]]))
        >>> # anchor 1 predicts the box exactly but is too far off itself; anchor 0 is nearest
        >>> result.gt_inds.tolist(), result.get_extra_property('pos_idx').tolist()
        ([1, -1, 0], [False, True])
    """

    def __init__(
        self,
        pos_ignore_thr: float,
        neg_ignore_thr: float,
        match_times: int = 4,
        iou_calculator: Mapping[str, Any] | Any = None,
    ) -> None:
        self.match_times = match_times
        self.pos_ignore_thr = pos_ignore_thr
        self.neg_ignore_thr = neg_ignore_thr
        self.iou_calculator = build_iou_calculator(iou_calculator)

    def assign(
        self,
        bbox_pred: torch.Tensor,
        anchor: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``[K, 4]`` to the anchors ``[N, 4]`` and their decoded
        predictions ``bbox_pred`` ``[N, 4]``."""
        num_gts, num_bboxes = gt_bboxes.size(0), bbox_pred.size(0)
        assigned = bbox_pred.new_zeros((num_bboxes,), dtype=torch.long)
        if num_gts == 0 or num_bboxes == 0:
            result = AssignResult(
                num_gts,
                assigned,
                bbox_pred.new_zeros((0,)),
                labels=assigned.new_full((num_bboxes,), -1),
            )
            result.set_extra_property("pos_idx", bbox_pred.new_empty(0, dtype=torch.bool))
            result.set_extra_property("pos_predicted_boxes", bbox_pred.new_empty((0, 4)))
            result.set_extra_property("target_boxes", bbox_pred.new_empty((0, 4)))
            return result

        gts = bbox_xyxy_to_cxcywh(gt_bboxes)
        # v2 ranks on the CPU (its top-k ties differ between devices)
        cost_pred = torch.cdist(bbox_xyxy_to_cxcywh(bbox_pred), gts, p=1).cpu()
        cost_anchor = torch.cdist(bbox_xyxy_to_cxcywh(anchor), gts, p=1).cpu()
        nearest_pred = torch.topk(cost_pred, k=self.match_times, dim=0, largest=False)[1]
        nearest_anchor = torch.topk(cost_anchor, k=self.match_times, dim=0, largest=False)[1]
        indexes = torch.cat((nearest_pred, nearest_anchor), dim=1).reshape(-1)
        indexes = indexes.to(bbox_pred.device)

        pred_overlaps = self.iou_calculator(bbox_pred, gt_bboxes)
        anchor_overlaps = self.iou_calculator(anchor, gt_bboxes)
        assigned[pred_overlaps.max(dim=1)[0] > self.neg_ignore_thr] = -1

        match_gt = torch.arange(num_gts, device=bbox_pred.device).repeat(self.match_times * 2)
        ignored = anchor_overlaps[indexes, match_gt] < self.pos_ignore_thr
        match_inds = match_gt + 1
        match_inds[ignored] = -1
        assigned[indexes] = match_inds

        labels = None
        if gt_labels is not None:
            labels = assigned.new_full((num_bboxes,), -1)
            positive = assigned > 0
            labels[positive] = gt_labels[assigned[positive] - 1]
        result = AssignResult(num_gts, assigned, anchor_overlaps.max(dim=0)[0], labels=labels)
        result.set_extra_property("pos_idx", ~ignored)
        result.set_extra_property("pos_predicted_boxes", bbox_pred[indexes])
        result.set_extra_property("target_boxes", gt_bboxes[match_gt])
        return result

    def __repr__(self) -> str:
        return (
            f"UniformAssigner(pos_ignore_thr={self.pos_ignore_thr}, "
            f"neg_ignore_thr={self.neg_ignore_thr}, match_times={self.match_times})"
        )
