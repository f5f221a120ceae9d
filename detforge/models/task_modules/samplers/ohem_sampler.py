"""``OHEMSampler``: Online Hard Example Mining (MMDetection v2's sampler of the same name).

When there are more positive (negative) candidates than the sampler takes, it keeps those
with the highest loss under the current RoI head: each candidate is pooled and classified
(without gradients) and the per-RoI ``loss_key`` loss (``loss_cls``: the cross entropy
against its assigned class, the background class for negatives) ranks them; otherwise all
are kept.

v2 gave the sampler the whole RoI head (``context``) at construction. Here the RoI head
passes what the sampler needs at sampling time, as a :class:`HardMining` (built by
:func:`detforge.models.roi_heads.base_roi_head.hard_mining`; ``StandardRoIHead`` and
``CascadeRoIHead`` do it for an ``OHEMSampler`` in ``train_cfg.rcnn.sampler``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers.base_sampler import BaseSampler
from detforge.models.task_modules.samplers.sampling_result import SamplingResult
from detforge.registry import TASK_UTILS

__all__ = ["HardMining", "OHEMSampler"]


@dataclass(frozen=True)
class HardMining:
    """What OHEM needs from a RoI head.

    Attributes:
        losses: ``losses(feats, bboxes [N, 4], labels [N]) -> {name: Tensor[N]}``, the
            per-RoI losses of one image's boxes (``feats``: that image's feature levels,
            batch of 1) under the current box branch.
        background_label: The label that scores negatives (the box head's ``num_classes``).
    """

    losses: Callable[[Sequence[torch.Tensor], torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
    background_label: int


@TASK_UTILS.register_module()
class OHEMSampler(BaseSampler):
    """Keep the hardest candidates (highest ``loss_key`` loss), see the module docstring.

    Args:
        num: Total number of samples.
        pos_fraction: Largest fraction of positives.
        neg_pos_ub: At most this many negatives per positive (no bound when negative).
        add_gt_as_proposals: Prepend the ground truths as extra positive proposals.
        loss_key: Which per-RoI loss ranks the candidates.

    Example:
        >>> sampler = OHEMSampler(num=2, pos_fraction=0.5, add_gt_as_proposals=False)
        >>> assign = AssignResult(1, torch.tensor([1, 0, 0, 0]), torch.zeros(4),
        ...                       labels=torch.tensor([0, -1, -1, -1]))
        >>> boxes = torch.tensor([[0., 0, 4, 4], [0, 0, 1, 1], [0, 0, 9, 9], [0, 0, 2, 2]])
        >>> by_size = HardMining(lambda feats, b, labels: {'loss_cls': b[:, 2]}, 3)
        >>> res = sampler.sample(assign, boxes, boxes[:1], feats=[], hard_mining=by_size)
        >>> res.pos_inds.tolist(), res.neg_inds.tolist()  # the largest box is the hardest
        ([0], [2])
    """

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
        loss_key: str = "loss_cls",
    ) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub, add_gt_as_proposals)
        self.loss_key = loss_key
        self._mining: HardMining | None = None

    def sample(
        self,
        assign_result: AssignResult,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor | None = None,
        feats: Sequence[torch.Tensor] | None = None,
        hard_mining: HardMining | None = None,
    ) -> SamplingResult:
        """:meth:`BaseSampler.sample`, ranking the candidates with ``hard_mining``.

        Args:
            assign_result: Assignment of ``bboxes``.
            bboxes: ``Tensor[N, 4]`` candidates.
            gt_bboxes: ``Tensor[K, 4]``.
            gt_labels: ``Tensor[K]``; required when ground truths are added.
            feats: This image's feature levels (batch of 1).
            hard_mining: The RoI head's scorer.

        Raises:
            ValueError: ``feats`` or ``hard_mining`` is missing.
        """
        if hard_mining is None or feats is None:
            raise ValueError(
                "OHEMSampler.sample needs the image's feats and the RoI head's hard_mining: "
                "use it as train_cfg.rcnn.sampler of a StandardRoIHead or CascadeRoIHead"
            )
        # The scorer belongs to this call only; the configured sampler stays stateless.
        bound = copy.copy(self)
        bound._mining = hard_mining
        return BaseSampler.sample(bound, assign_result, bboxes, gt_bboxes, gt_labels, feats)

    def _mine(
        self,
        candidates: torch.Tensor,
        num_expected: int,
        bboxes: torch.Tensor,
        labels: torch.Tensor | None,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        """All ``candidates`` (a mask) if there are at most ``num_expected``, else the hardest."""
        inds = torch.nonzero(candidates, as_tuple=False).view(-1)
        if inds.numel() <= num_expected:
            return inds
        if labels is None:
            raise ValueError("OHEMSampler: the assignment has no labels to score positives by")
        assert self._mining is not None and feats is not None
        with torch.no_grad():
            loss = self._mining.losses(feats, bboxes[inds], labels[inds])[self.loss_key]
            _, top = loss.topk(num_expected)
        return inds[top]

    def _sample_pos(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        positive = assign_result.gt_inds > 0
        return self._mine(positive, num_expected, bboxes, assign_result.labels, feats)

    def _sample_neg(
        self,
        assign_result: AssignResult,
        num_expected: int,
        bboxes: torch.Tensor,
        feats: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        assert self._mining is not None
        background = torch.full_like(assign_result.gt_inds, self._mining.background_label)
        return self._mine(assign_result.gt_inds == 0, num_expected, bboxes, background, feats)
