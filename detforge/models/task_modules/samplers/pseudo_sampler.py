"""``PseudoSampler``: take every positive and negative prior (one-stage heads)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers.sampling_result import SamplingResult
from detforge.registry import TASK_UTILS

__all__ = ["PseudoSampler"]


@TASK_UTILS.register_module()
class PseudoSampler:
    """A sampler that samples nothing away: all positives and all negatives, ignored ones left out.

    Example:
        >>> assign = AssignResult(1, torch.tensor([0, 1, -1, 0]), torch.zeros(4))
        >>> res = PseudoSampler().sample(assign, torch.rand(4, 4), torch.rand(1, 4))
        >>> res.pos_inds.tolist(), res.neg_inds.tolist()
        ([1], [0, 3])
    """

    def __init__(self) -> None:
        pass

    def sample(
        self,
        assign_result: AssignResult,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None = None,
        feats: Sequence[torch.Tensor] | None = None,
    ) -> SamplingResult:
        """Positives are the priors with ``gt_inds > 0``, negatives those with ``gt_inds == 0``.

        Args:
            assign_result: Assignment of ``bboxes``.
            bboxes: ``Tensor[N, 4]`` priors.
            gt_bboxes: ``Tensor[K, 4]``.
            gt_labels: Unused (accepted so every sampler has the same call).
            feats: Unused (accepted so every sampler has the same call).
        """
        pos_inds = torch.nonzero(assign_result.gt_inds > 0, as_tuple=False).squeeze(-1).unique()
        neg_inds = torch.nonzero(assign_result.gt_inds == 0, as_tuple=False).squeeze(-1).unique()
        gt_flags = bboxes.new_zeros(bboxes.shape[0], dtype=torch.uint8)
        return SamplingResult(pos_inds, neg_inds, bboxes, gt_bboxes, assign_result, gt_flags)

    def __repr__(self) -> str:
        return "PseudoSampler()"
