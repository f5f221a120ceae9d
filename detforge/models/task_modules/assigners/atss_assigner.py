"""``ATSSAssigner``: Adaptive Training Sample Selection (Zhang et al. 2020), MMDetection v2.28.

For each ground truth, the ``topk`` priors whose centres are nearest to its centre are taken
on every pyramid level; their IoUs give an adaptive threshold ``mean + std`` (unbiased std), and
the candidates at or above it whose centre lies inside the box (by more than 0.01 px) become
positives. A prior claimed by several ground truths goes to the one it overlaps most.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.iou_calculators import build_iou_calculator
from detforge.registry import TASK_UTILS

__all__ = ["ATSSAssigner"]

_INF = 100000000


def _centers(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0


@TASK_UTILS.register_module()
class ATSSAssigner:
    """Assign priors to ground truths by ATSS (``mmdet.core.bbox.ATSSAssigner``, v2.28).

    Args:
        topk: Candidates per level and ground truth (fewer when a level has fewer priors).
        alpha: ``None`` for plain ATSS (IoU of the priors). A number switches to DDOD's
            dynamic cost ``sigmoid(cls_score) ** (1 - alpha) * IoU(bbox_pred) ** alpha``, which
            needs ``cls_scores`` and ``bbox_preds`` in :meth:`assign`.
        iou_calculator: Config (or instance) of the IoU calculator; default
            ``dict(type='BboxOverlaps2D')``.
        ignore_iof_thr: Priors whose IoF with a ``gt_bboxes_ignore`` box exceeds this are
            ignored (-1) and never candidates; values ``<= 0`` disable it.

    Example:
        >>> assigner = ATSSAssigner(topk=3)
        >>> priors = torch.tensor([[0., 0., 10., 10.], [1., 0., 11., 10.], [-1., 0., 9., 10.]])
        >>> result = assigner.assign(priors, [3], torch.tensor([[0., 0., 10., 10.]]))
        >>> result.gt_inds.tolist()
        [1, 0, 0]
    """

    def __init__(
        self,
        topk: int,
        alpha: float | None = None,
        iou_calculator: Mapping[str, Any] | Any = None,
        ignore_iof_thr: float = -1,
    ) -> None:
        if int(topk) <= 0:
            raise InvalidArgumentError(f"ATSSAssigner: topk must be positive, got {topk!r}")
        self.topk = int(topk)
        self.alpha = alpha
        self.iou_calculator = build_iou_calculator(iou_calculator)
        self.ignore_iof_thr = ignore_iof_thr

    def _overlaps(
        self,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None,
        cls_scores: torch.Tensor | None,
        bbox_preds: torch.Tensor | None,
    ) -> torch.Tensor:
        """The ``[N, K]`` quality matrix: IoU of the priors, or DDOD's cost when ``alpha``."""
        if self.alpha is None:
            if cls_scores is not None or bbox_preds is not None:
                warnings.warn(
                    "ATSSAssigner: cls_scores/bbox_preds are ignored without alpha; set alpha "
                    "for the cost-based (DDOD) assignment",
                    stacklevel=3,
                )
            return self.iou_calculator(bboxes, gt_bboxes)
        if cls_scores is None or bbox_preds is None or gt_labels is None:
            raise InvalidArgumentError(
                f"ATSSAssigner(alpha={self.alpha}): the cost-based assignment needs "
                "cls_scores, bbox_preds and gt_labels"
            )
        cls_cost = torch.sigmoid(cls_scores[:, gt_labels])
        ious = self.iou_calculator(bbox_preds, gt_bboxes)
        if cls_cost.shape != ious.shape:
            raise InvalidArgumentError(
                f"ATSSAssigner: class cost {tuple(cls_cost.shape)} and IoU {tuple(ious.shape)} "
                "shapes differ"
            )
        return cls_cost ** (1 - self.alpha) * ious**self.alpha

    @torch.no_grad()
    def assign(
        self,
        bboxes: torch.Tensor,
        num_level_bboxes: Sequence[int],
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
        cls_scores: torch.Tensor | None = None,
        bbox_preds: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``[K, 4]`` to the priors ``bboxes`` ``[N, 4]``.

        Args:
            bboxes: Priors of all levels, level after level (a 5th column is dropped).
            num_level_bboxes: Number of priors of each level (summing to ``N``).
            gt_bboxes: Ground-truth boxes.
            gt_bboxes_ignore: Boxes to ignore (``[k, 4]``), used with ``ignore_iof_thr``.
            gt_labels: ``Tensor[K]`` labels; with them the result carries ``labels``.
            cls_scores: ``Tensor[N, C]`` logits (cost-based mode only).
            bbox_preds: ``Tensor[N, 4]`` decoded boxes (cost-based mode only).

        Returns:
            ``gt_inds`` (0 negative, -1 ignored, ``k + 1`` for ground truth ``k``),
            ``max_overlaps`` (the winning quality, ``-1e8`` for non-positives) and ``labels``.
        """
        bboxes = bboxes[:, :4]
        num_gt, num_bboxes = gt_bboxes.size(0), bboxes.size(0)
        if sum(int(n) for n in num_level_bboxes) != num_bboxes:
            raise InvalidArgumentError(
                f"ATSSAssigner: num_level_bboxes {list(num_level_bboxes)} do not add up to "
                f"{num_bboxes} priors"
            )
        overlaps = self._overlaps(bboxes, gt_bboxes, gt_labels, cls_scores, bbox_preds)
        assigned_gt_inds = overlaps.new_full((num_bboxes,), 0, dtype=torch.long)
        if num_gt == 0 or num_bboxes == 0:
            labels = None
            if gt_labels is not None:
                labels = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
            return AssignResult(
                num_gt, assigned_gt_inds, overlaps.new_zeros((num_bboxes,)), labels=labels
            )

        gt_cx, gt_cy = _centers(gt_bboxes)
        prior_cx, prior_cy = _centers(bboxes)
        gt_points = torch.stack((gt_cx, gt_cy), dim=1)
        prior_points = torch.stack((prior_cx, prior_cy), dim=1)
        distances = (prior_points[:, None, :] - gt_points[None, :, :]).pow(2).sum(-1).sqrt()

        if (
            self.ignore_iof_thr > 0
            and gt_bboxes_ignore is not None
            and gt_bboxes_ignore.numel() > 0
        ):
            ignore_iof = self.iou_calculator(bboxes, gt_bboxes_ignore, mode="iof")
            ignored = ignore_iof.max(dim=1).values > self.ignore_iof_thr
            distances[ignored, :] = _INF
            assigned_gt_inds[ignored] = -1

        # the topk nearest priors of each level are the candidates, [L * k, K]
        candidates = []
        start = 0
        for count in num_level_bboxes:
            end = start + int(count)
            k = min(self.topk, int(count))
            _, nearest = distances[start:end, :].topk(k, dim=0, largest=False)
            candidates.append(nearest + start)
            start = end
        candidate_idxs = torch.cat(candidates, dim=0)

        gt_ids = torch.arange(num_gt, device=overlaps.device)
        candidate_overlaps = overlaps[candidate_idxs, gt_ids]
        thresholds = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
        is_pos = candidate_overlaps >= thresholds[None, :]

        # the candidate's centre must lie inside its ground truth
        cand_cx = prior_cx[candidate_idxs]
        cand_cy = prior_cy[candidate_idxs]
        margins = torch.stack(
            [
                cand_cx - gt_bboxes[:, 0],
                cand_cy - gt_bboxes[:, 1],
                gt_bboxes[:, 2] - cand_cx,
                gt_bboxes[:, 3] - cand_cy,
            ],
            dim=1,
        )
        is_pos = is_pos & (margins.min(dim=1).values > 0.01)

        # a prior claimed by several ground truths takes the one it overlaps most
        pos_mask = torch.zeros(num_gt, num_bboxes, dtype=torch.bool, device=overlaps.device)
        pos_mask[gt_ids[None, :].expand_as(candidate_idxs)[is_pos], candidate_idxs[is_pos]] = True
        claimed = torch.where(pos_mask.t(), overlaps, overlaps.new_tensor(-_INF))
        max_overlaps, argmax = claimed.max(dim=1)
        won = max_overlaps != -_INF
        assigned_gt_inds[won] = argmax[won] + 1

        labels = None
        if gt_labels is not None:
            labels = assigned_gt_inds.new_full((num_bboxes,), -1)
            pos = torch.nonzero(assigned_gt_inds > 0, as_tuple=False).squeeze(-1)
            if pos.numel() > 0:
                labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
        return AssignResult(num_gt, assigned_gt_inds, max_overlaps, labels=labels)
