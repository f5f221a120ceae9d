"""``BaseSampler``: the shared sampling procedure of MMDetection v2's box samplers."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers.sampling_result import SamplingResult

__all__ = ["BaseSampler"]


class BaseSampler(metaclass=ABCMeta):
    """Pick up to ``num`` priors, a ``pos_fraction`` of them positive; subclasses choose which.

    Args:
        num: Total number of samples.
        pos_fraction: Largest fraction of positives.
        neg_pos_ub: At most this many negatives per positive (no bound when negative).
        add_gt_as_proposals: Prepend the ground truths to the priors as extra positives.
    """

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
    ) -> None:
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    @abstractmethod
    def _sample_pos(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Indices of at most ``num_expected`` positive priors."""

    @abstractmethod
    def _sample_neg(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Indices of at most ``num_expected`` negative priors."""

    def sample(
        self,
        assign_result: AssignResult,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None = None,
        feats: Sequence[torch.Tensor] | None = None,
    ) -> SamplingResult:
        """Sample positives and negatives among ``bboxes``.

        With ``add_gt_as_proposals`` the ground truths are prepended to ``bboxes`` (and to
        ``assign_result``, which is modified in place) before sampling.

        Args:
            assign_result: Assignment of ``bboxes``.
            bboxes: ``Tensor[N, 4]`` priors (further columns, e.g. scores, are dropped).
            gt_bboxes: ``Tensor[K, 4]``.
            gt_labels: ``Tensor[K]``; required when ground truths are added.
            feats: Per-level features of this image, for samplers that score priors.

        Returns:
            The sampled indices (sorted) and their targets.
        """
        if bboxes.ndim < 2:
            bboxes = bboxes[None, :]
        bboxes, gt_flags = self._add_gt(assign_result, bboxes, gt_bboxes, gt_labels)
        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds = self._sample_pos(assign_result, num_expected_pos, bboxes, feats).unique()
        num_expected_neg = self._num_expected_neg(pos_inds.numel())
        neg_inds = self._sample_neg(assign_result, num_expected_neg, bboxes, feats).unique()
        return SamplingResult(pos_inds, neg_inds, bboxes, gt_bboxes, assign_result, gt_flags)

    def _add_gt(
        self,
        assign_result: AssignResult,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``bboxes[:, :4]`` with the ground truths prepended when ``add_gt_as_proposals``
        (``assign_result`` extended in place), and the uint8 flags of the added ones."""
        bboxes = bboxes[:, :4]
        gt_flags = bboxes.new_zeros((bboxes.shape[0],), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            if gt_labels is None:
                raise InvalidArgumentError(
                    f"{type(self).__name__}.sample: gt_labels must be given when "
                    "add_gt_as_proposals is True"
                )
            bboxes = torch.cat([gt_bboxes, bboxes], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_ones = bboxes.new_ones(gt_bboxes.shape[0], dtype=torch.uint8)
            gt_flags = torch.cat([gt_ones, gt_flags])
        return bboxes, gt_flags

    def _num_expected_neg(self, num_sampled_pos: int) -> int:
        """``num`` minus the positives, at most ``neg_pos_ub`` per positive (at least one)."""
        num_expected_neg = self.num - num_sampled_pos
        if self.neg_pos_ub >= 0:
            neg_upper_bound = int(self.neg_pos_ub * max(1, num_sampled_pos))
            num_expected_neg = min(num_expected_neg, neg_upper_bound)
        return num_expected_neg

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num={self.num}, pos_fraction={self.pos_fraction}, "
            f"neg_pos_ub={self.neg_pos_ub}, add_gt_as_proposals={self.add_gt_as_proposals})"
        )
