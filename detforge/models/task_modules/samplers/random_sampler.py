"""``RandomSampler``: sample positives and negatives uniformly at random (MMDetection v2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detforge.errors import InvalidArgumentError
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers.base_sampler import BaseSampler
from detforge.registry import TASK_UTILS

__all__ = ["RandomSampler"]


@TASK_UTILS.register_module()
class RandomSampler(BaseSampler):
    """Uniform random sampling of up to ``num`` priors, ``pos_fraction`` of them positive.

    When there are no more candidates than requested, every candidate is taken (no random
    draw), so ``num=1000000`` samples everything deterministically. The random draw uses the
    global torch generator (``torch.randperm`` on the CPU), like v2.

    Args:
        num: Total number of samples.
        pos_fraction: Largest fraction of positives.
        neg_pos_ub: At most this many negatives per positive (no bound when negative).
        add_gt_as_proposals: Prepend the ground truths as extra positive proposals.

    Example:
        >>> sampler = RandomSampler(num=4, pos_fraction=0.5, add_gt_as_proposals=False)
        >>> assign = AssignResult(1, torch.tensor([1, 0, 0, -1, 0]), torch.zeros(5))
        >>> res = sampler.sample(assign, torch.rand(5, 4), torch.rand(1, 4))
        >>> res.pos_inds.tolist(), len(res.neg_inds)
        ([0], 3)
    """

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
    ) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub, add_gt_as_proposals)

    def random_choice(
        self, gallery: torch.Tensor | np.ndarray | Sequence[int], num: int
    ) -> torch.Tensor | np.ndarray:
        """``num`` distinct random elements of ``gallery`` (a tensor, or an ndarray for others)."""
        if len(gallery) < num:
            raise InvalidArgumentError(
                f"RandomSampler: cannot draw {num} from {len(gallery)} candidates"
            )
        is_tensor = isinstance(gallery, torch.Tensor)
        if isinstance(gallery, torch.Tensor):
            gallery_t = gallery
        else:
            gallery_t = torch.tensor(np.asarray(gallery), dtype=torch.long)
        perm = torch.randperm(gallery_t.numel())[:num].to(device=gallery_t.device)
        chosen = gallery_t[perm]
        return chosen if is_tensor else chosen.cpu().numpy()

    def _sample_from(self, candidates: torch.Tensor, num_expected: int) -> torch.Tensor:
        inds = torch.nonzero(candidates, as_tuple=False)
        if inds.numel() != 0:
            inds = inds.squeeze(1)
        if inds.numel() <= num_expected:
            return inds
        chosen = self.random_choice(inds, num_expected)
        assert isinstance(chosen, torch.Tensor)
        return chosen

    def _sample_pos(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        return self._sample_from(assign_result.gt_inds > 0, num_expected)

    def _sample_neg(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        return self._sample_from(assign_result.gt_inds == 0, num_expected)
