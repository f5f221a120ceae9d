"""``ScoreHLRSampler``: PISA's importance-based negative sampling (ISR-N), as in v2.

Positives are drawn at random as by :class:`RandomSampler`. Negatives, with ``n`` the number
wanted (at most the negatives there are):

1. the RoI head scores every negative (``context._bbox_forward``, no gradient); ``s`` is a
   negative's largest foreground softmax score and ``c`` its class;
2. negatives with ``s > score_thr`` are *valid*; their boxes (deltas of class ``c`` decoded on
   the negative) are grouped by :func:`detforge.ops.nms_match` at ``iou_thr``;
3. a valid negative's importance is ``num_valid - r + s``, ``r`` its 0-based rank in its group
   (score order), so rank inside a group dominates; the ``n`` most important are taken
   (Score-HLR order), then, if that is not enough, random invalid ones (``torch.randperm``);
4. the label weights are ``(up - rank) / up`` for the valid ones taken (``rank`` the
   importance rank, ``up = max(n, num_valid)``), the smallest of those for the random ones,
   then ``(bias + (1 - bias) * w) ** k``, scaled so that the unreduced classification losses
   of the taken negatives (as background) keep their sum. Without a valid negative, ``n``
   random negatives get weight 1.

The negatives keep that order (not sorted) so that the weights line up with them. The sampler
needs the RoI head it belongs to (``context``): :class:`detforge.models.roi_heads.PISARoIHead`
binds itself and reads the weights from the sampling results (``neg_label_weights``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers.random_sampler import RandomSampler
from detforge.models.task_modules.samplers.sampling_result import SamplingResult
from detforge.ops.nms_match import nms_match
from detforge.registry import TASK_UTILS
from detforge.structures.bbox import bbox2roi

__all__ = ["ScoreHLRSampler"]


@TASK_UTILS.register_module()
class ScoreHLRSampler(RandomSampler):
    """Random positives, Score-HLR negatives with importance weights (module docstring).

    Args:
        num: Total number of samples.
        pos_fraction: Largest fraction of positives.
        context: The RoI head that scores the negatives (set by the head when ``None``).
        neg_pos_ub: At most this many negatives per positive (no bound when negative).
        add_gt_as_proposals: Prepend the ground truths as extra positive proposals.
        k: Power of the weight mapping.
        bias: Shift of the weight mapping.
        score_thr: Negatives scoring at most this are not ranked (random fill-up).
        iou_thr: IoU at which ``nms_match`` groups two negatives.
    """

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        context: Any = None,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
        k: float = 0.5,
        bias: float = 0,
        score_thr: float = 0.05,
        iou_thr: float = 0.5,
    ) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub, add_gt_as_proposals)
        self.context = context
        self.k = k
        self.bias = bias
        self.score_thr = score_thr
        self.iou_thr = iou_thr

    def sample(
        self,
        assign_result: AssignResult,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None = None,
        feats: Sequence[torch.Tensor] | None = None,
    ) -> SamplingResult:
        """Sample as :meth:`BaseSampler.sample`, positives unsorted and negatives in Score-HLR
        order; the result's ``neg_label_weights`` are the negatives' importance weights
        (``None`` without negatives)."""
        bboxes, gt_flags = self._add_gt(assign_result, bboxes, gt_bboxes, gt_labels)
        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds = self._sample_pos(assign_result, num_expected_pos, bboxes, feats)
        num_expected_neg = self._num_expected_neg(pos_inds.numel())
        neg_inds, neg_weights = self._sample_neg_weighted(
            assign_result, num_expected_neg, bboxes, feats
        )
        result = SamplingResult(pos_inds, neg_inds, bboxes, gt_bboxes, assign_result, gt_flags)
        result.neg_label_weights = neg_weights
        return result

    def _sample_neg(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        return self._sample_neg_weighted(assign_result, num_expected, bboxes, feats)[0]

    def _sample_neg_weighted(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        neg_inds = torch.nonzero(assign_result.gt_inds == 0).flatten()
        num_neg = neg_inds.size(0)
        if num_neg == 0:
            return neg_inds, None
        if self.context is None or feats is None:
            raise RuntimeError(
                "ScoreHLRSampler needs its RoI head (context) and the image's features to "
                "score the negatives; use it in a PISARoIHead"
            )
        head = self.context.bbox_head
        with torch.no_grad():
            neg_rois = bbox2roi([bboxes[neg_inds]])
            results = self.context._bbox_forward(feats, neg_rois)
            cls_score, bbox_pred = results["cls_score"], results["bbox_pred"]
            labels = neg_inds.new_full((num_neg,), head.num_classes)
            ori_loss = head.loss_cls(
                cls_score, labels, cls_score.new_ones(num_neg), reduction_override="none"
            )
            max_score, argmax_score = cls_score.softmax(-1)[:, :-1].max(-1)
            valid_inds = (max_score > self.score_thr).nonzero().view(-1)
            invalid_inds = (max_score <= self.score_thr).nonzero().view(-1)
            num_valid = valid_inds.size(0)
            num_expected = min(num_neg, num_expected)
            if num_valid == 0 or num_expected == 0:
                select = torch.randperm(num_neg)[:num_expected].to(neg_inds.device)
                return neg_inds[select], cls_score.new_ones(num_expected)
            num_hlr = min(num_valid, num_expected)
            num_rand = num_expected - num_hlr
            valid_score = max_score[valid_inds]
            deltas = bbox_pred[valid_inds].view(num_valid, -1, 4)
            deltas = deltas[torch.arange(num_valid), argmax_score[valid_inds]]
            boxes = head.bbox_coder.decode(neg_rois[valid_inds, 1:], deltas)
            imp = cls_score.new_zeros(num_valid)
            for group in nms_match(torch.cat([boxes, valid_score[:, None]], -1), self.iou_thr):
                rank = torch.arange(group.numel(), dtype=imp.dtype, device=imp.device)
                imp[group] = num_valid - rank + valid_score[group]
            imp_rank_inds = imp.sort(descending=True).indices
            imp_rank = imp_rank_inds.sort().indices
            hlr_inds = imp_rank_inds[:num_expected]
            select = valid_inds[hlr_inds]
            if num_rand > 0:
                rand = torch.randperm(invalid_inds.size(0))[:num_rand].to(neg_inds.device)
                select = torch.cat([select, invalid_inds[rand]])
            up_bound = max(num_expected, num_valid)
            imp_weights = (up_bound - imp_rank[hlr_inds].float()) / up_bound
            weights = cls_score.new_ones(num_expected)
            weights[:num_hlr] = imp_weights
            weights[num_hlr:] = imp_weights.min()
            weights = (self.bias + (1 - self.bias) * weights).pow(self.k)
            selected_loss = ori_loss[select]
            weights *= selected_loss.sum() / (selected_loss * weights).sum()
            return neg_inds[select], weights
