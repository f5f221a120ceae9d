"""``AssignResult``: which ground-truth box (if any) each prior was assigned to."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["AssignResult", "ensure_rng"]


def ensure_rng(rng: int | np.random.RandomState | None = None) -> np.random.RandomState:
    """v2's ``demodata.ensure_rng``: a seed, an existing state, or ``None`` (numpy's global).

    Example:
        >>> ensure_rng(0).randint(100) == np.random.RandomState(0).randint(100)
        True
    """
    if rng is None:
        return np.random.mtrand._rand
    if isinstance(rng, int):
        return np.random.RandomState(rng)
    return rng


class AssignResult:
    """The outcome of an assigner (``mmdet.core.bbox.AssignResult``).

    Args:
        num_gts: Number of ground-truth boxes.
        gt_inds: ``Tensor[N]`` int64 per prior: 0 negative, -1 ignored, ``k > 0`` assigned to
            ground truth ``k - 1`` (1-based).
        max_overlaps: ``Tensor[N]`` the prior's highest IoU with any ground truth.
        labels: ``Tensor[N]`` int64 label of the assigned ground truth (-1 where none), or
            ``None`` when the assigner got no labels.

    Example:
        >>> result = AssignResult(2, torch.tensor([1, 0, 2]), torch.tensor([0.7, 0.1, 0.6]),
        ...                       labels=torch.tensor([5, -1, 3]))
        >>> result.add_gt_(torch.tensor([5, 3]))
        >>> result.gt_inds.tolist(), result.labels.tolist()
        ([1, 2, 1, 0, 2], [5, 3, 5, -1, 3])
    """

    def __init__(
        self,
        num_gts: int,
        gt_inds: torch.Tensor,
        max_overlaps: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> None:
        self.num_gts = num_gts
        self.gt_inds = gt_inds
        self.max_overlaps = max_overlaps
        self.labels = labels
        self._extra_properties: dict[str, Any] = {}

    @property
    def num_preds(self) -> int:
        """Number of priors that were assigned."""
        return len(self.gt_inds)

    def set_extra_property(self, key: str, value: Any) -> None:
        """Attach extra per-result data (must not shadow an attribute)."""
        if key in self.info:
            raise KeyError(f"AssignResult: {key!r} is a built-in attribute")
        self._extra_properties[key] = value

    def get_extra_property(self, key: str) -> Any:
        """The extra property ``key``, or ``None``."""
        return self._extra_properties.get(key, None)

    @property
    def info(self) -> dict[str, Any]:
        """All attributes and extra properties as a dict."""
        basic = {
            "num_gts": self.num_gts,
            "num_preds": self.num_preds,
            "gt_inds": self.gt_inds,
            "max_overlaps": self.max_overlaps,
            "labels": self.labels,
        }
        basic.update(self._extra_properties)
        return basic

    @classmethod
    def random(
        cls,
        num_preds: int | None = None,
        num_gts: int | None = None,
        p_ignore: float = 0.3,
        p_assigned: float = 0.7,
        p_use_label: float | bool = 0.5,
        num_classes: int = 3,
        rng: int | np.random.RandomState | None = None,
    ) -> AssignResult:
        """A random assignment for tests and debugging (v2's ``AssignResult.random``).

        Args:
            num_preds: Number of priors (random in ``[0, 16)`` when ``None``).
            num_gts: Number of ground truths (random in ``[0, 8)`` when ``None``).
            p_ignore: Probability that an assigned prior is ignored instead (``-1``).
            p_assigned: Probability that a prior is assigned to some ground truth.
            p_use_label: ``True`` for labels, else the probability of having none.
            num_classes: Labels are drawn from ``[0, num_classes)``.
            rng: A seed, a ``numpy.random.RandomState`` or ``None`` (numpy's global state).

        Example:
            >>> res = AssignResult.random(num_preds=5, num_gts=2, p_use_label=True, rng=0)
            >>> res.num_preds, res.num_gts, bool(res.gt_inds.max() <= 2)
            (5, 2, True)
        """
        gen = ensure_rng(rng)
        num_gts = int(gen.randint(0, 8)) if num_gts is None else num_gts
        num_preds = int(gen.randint(0, 16)) if num_preds is None else num_preds
        with_labels = p_use_label is True or p_use_label < gen.rand()
        if num_gts == 0:
            gt_inds = torch.zeros(num_preds, dtype=torch.int64)
            max_overlaps = torch.zeros(num_preds, dtype=torch.float32)
        else:
            assigned = torch.from_numpy(gen.rand(num_preds) < p_assigned)
            ignored = torch.from_numpy(gen.rand(num_preds) < p_ignore) & assigned
            gt_inds = torch.from_numpy(gen.randint(1, num_gts + 1, size=num_preds)).long()
            gt_inds[~assigned] = 0
            gt_inds[ignored] = -1
            max_overlaps = torch.from_numpy(gen.rand(num_preds)).float()
            max_overlaps[~assigned] = 0
        labels = None
        if with_labels:
            labels = torch.from_numpy(gen.randint(0, max(num_classes, 1), size=num_preds)).long()
            labels[gt_inds <= 0] = -1
        return cls(num_gts, gt_inds, max_overlaps, labels)

    def add_gt_(self, gt_labels: torch.Tensor) -> None:
        """Prepend the ground-truth boxes themselves as priors assigned to themselves (IoU 1).

        Args:
            gt_labels: ``Tensor[num_gts]`` labels of the ground truths.
        """
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat(
            [self.max_overlaps.new_ones(len(gt_labels)), self.max_overlaps]
        )
        if self.labels is not None:
            self.labels = torch.cat([gt_labels, self.labels])

    def __repr__(self) -> str:
        parts = [f"num_gts={self.num_gts}", f"num_preds={self.num_preds}"]
        parts.append(f"gt_inds.shape={tuple(self.gt_inds.shape)}")
        parts.append(f"max_overlaps.shape={tuple(self.max_overlaps.shape)}")
        labels = None if self.labels is None else tuple(self.labels.shape)
        parts.append(f"labels.shape={labels}")
        return f"<AssignResult({', '.join(parts)})>"
