"""``SamplingResult``: the positive and negative priors a sampler picked, with their targets."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from detforge.errors import InvalidArgumentError
from detforge.models.task_modules.assigners.assign_result import AssignResult, ensure_rng

__all__ = ["SamplingResult"]


class SamplingResult:
    """Sampled priors and their ground truths (``mmdet.core.bbox.SamplingResult``).

    Args:
        pos_inds: ``Tensor[P]`` indices of positive priors in ``bboxes``.
        neg_inds: ``Tensor[Q]`` indices of negative priors.
        bboxes: ``Tensor[N, 4]`` all priors (ground truths first when they were added).
        gt_bboxes: ``Tensor[K, 4]``.
        assign_result: The assignment of ``bboxes``.
        gt_flags: ``Tensor[N]`` uint8, 1 where the prior is an added ground truth.

    Attributes:
        pos_bboxes, neg_bboxes: The sampled priors.
        pos_is_gt: ``gt_flags`` of the positives.
        pos_assigned_gt_inds: 0-based ground-truth index of each positive.
        pos_gt_bboxes: ``Tensor[P, 4]`` ground truth of each positive.
        pos_gt_labels: Label of each positive's ground truth (``None`` without labels).
        neg_label_weights: Classification weights of the negatives, from samplers that weight
            them (``ScoreHLRSampler``); ``None`` otherwise.

    Example:
        >>> assign = AssignResult(1, torch.tensor([1, 0, -1]), torch.tensor([.8, .1, .4]),
        ...                       labels=torch.tensor([7, -1, -1]))
        >>> priors = torch.tensor([[0., 0., 9., 9.], [20., 20., 30., 30.], [5., 5., 15., 15.]])
        >>> res = SamplingResult(torch.tensor([0]), torch.tensor([1]), priors,
        ...                      torch.tensor([[0., 0., 10., 10.]]), assign,
        ...                      torch.zeros(3, dtype=torch.uint8))
        >>> res.pos_gt_bboxes.tolist(), res.pos_gt_labels.tolist(), res.bboxes.shape
        ([[0.0, 0.0, 10.0, 10.0]], [7], torch.Size([2, 4]))
    """

    def __init__(
        self,
        pos_inds: torch.Tensor,
        neg_inds: torch.Tensor,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        assign_result: AssignResult,
        gt_flags: torch.Tensor,
    ) -> None:
        self.pos_inds = pos_inds
        self.neg_inds = neg_inds
        self.pos_bboxes = bboxes[pos_inds]
        self.neg_bboxes = bboxes[neg_inds]
        self.pos_is_gt = gt_flags[pos_inds]
        self.num_gts = gt_bboxes.shape[0]
        self.pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        if gt_bboxes.numel() == 0:
            if self.pos_assigned_gt_inds.numel() != 0:
                raise InvalidArgumentError(
                    "SamplingResult: positives were sampled but there is no gt box"
                )
            self.pos_gt_bboxes = torch.empty_like(gt_bboxes).view(-1, 4)
        else:
            if gt_bboxes.ndim < 2:
                gt_bboxes = gt_bboxes.view(-1, 4)
            self.pos_gt_bboxes = gt_bboxes[self.pos_assigned_gt_inds.long(), :]
        self.pos_gt_labels: torch.Tensor | None = (
            assign_result.labels[pos_inds] if assign_result.labels is not None else None
        )
        self.neg_label_weights: torch.Tensor | None = None

    @classmethod
    def random(
        cls, rng: int | np.random.RandomState | None = None, **kwargs: Any
    ) -> SamplingResult:
        """A random sampling result for tests and debugging (v2's ``SamplingResult.random``):
        :meth:`AssignResult.random` (``kwargs`` go to it), random boxes, then a
        ``RandomSampler(num=32, pos_fraction=0.5)`` draw seeded from ``rng``.

        Example:
            >>> res = SamplingResult.random(rng=0, num_preds=10, num_gts=3)
            >>> len(res.pos_inds) + len(res.neg_inds) <= 10
            True
        """
        from detforge.models.task_modules.samplers.random_sampler import RandomSampler

        gen = ensure_rng(rng)
        assign = AssignResult.random(rng=gen, **kwargs)
        bboxes, gt_bboxes = (_random_boxes(n, gen) for n in (assign.num_preds, assign.num_gts))
        sampler = RandomSampler(num=32, pos_fraction=0.5, add_gt_as_proposals=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(gen.randint(0, 2**31 - 1)))
            return sampler.sample(assign, bboxes, gt_bboxes)

    @property
    def bboxes(self) -> torch.Tensor:
        """Positives then negatives, ``Tensor[P + Q, 4]``."""
        return torch.cat([self.pos_bboxes, self.neg_bboxes])

    def to(self, device: str | torch.device) -> SamplingResult:
        """Move every tensor attribute to ``device`` (in place) and return ``self``."""
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, key, value.to(device))
        return self

    @property
    def info(self) -> dict[str, Any]:
        """The main attributes as a dict."""
        return {
            "pos_inds": self.pos_inds,
            "neg_inds": self.neg_inds,
            "pos_bboxes": self.pos_bboxes,
            "neg_bboxes": self.neg_bboxes,
            "pos_is_gt": self.pos_is_gt,
            "num_gts": self.num_gts,
            "pos_assigned_gt_inds": self.pos_assigned_gt_inds,
        }

    def __repr__(self) -> str:
        return (
            f"<SamplingResult(num_gts={self.num_gts}, num_pos={len(self.pos_inds)}, "
            f"num_neg={len(self.neg_inds)})>"
        )


def _random_boxes(num: int, gen: np.random.RandomState, scale: float = 100.0) -> torch.Tensor:
    """``num`` valid random boxes ``float32 [num, 4]`` inside ``[0, scale]`` (v2's demodata)."""
    corners = torch.from_numpy(gen.rand(num, 4) * scale).float()
    xy1 = torch.minimum(corners[:, :2], corners[:, 2:])
    xy2 = torch.maximum(corners[:, :2], corners[:, 2:])
    return torch.cat([xy1, xy2], dim=1)
