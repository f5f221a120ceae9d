"""``AssignResult``: which ground-truth box (if any) each prior was assigned to."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["AssignResult"]


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
