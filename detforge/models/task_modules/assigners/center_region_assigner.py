"""``CenterRegionAssigner``: FSAF's effective and ignoring regions (MMDetection v2.28).

Every ground truth has a core box (its box scaled about its centre by ``pos_scale``) and a shadow
box (scaled by ``neg_scale``). A prior is in a ground truth's core when its centre lies strictly
inside the ground truth and its IoF (over the prior's area) with the core exceeds
``min_pos_iof``; in its shadow when its IoF with the shadow box exceeds ``min_pos_iof`` and it is
not in the core. A prior in several cores goes to the smallest ground truth (area rank, larger
areas first in a descending sort); the other (prior, ground truth) core pairs and all shadow pairs
are *shadowed*: the prior stays background, but its loss for that ground truth's class is
ignored (``shadowed_labels``, pairs ``(prior index, class)`` as an extra property of the
result). A prior positive for a class it is also shadowed for becomes background (unless
``foreground_dominate``). Priors whose centre lies inside a crowd box scaled by
``ignore_gt_scale`` are ignored (-1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.iou_calculators import BboxOverlaps2D  # noqa: F401 (registers it)
from detforge.registry import TASK_UTILS, build_module

__all__ = ["CenterRegionAssigner", "centers_inside", "scale_boxes"]


def scale_boxes(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    """``boxes`` ``Tensor[m, 4]`` with their width and height times ``scale``, same centres.

    Example:
        >>> scale_boxes(torch.tensor([[0., 0., 10., 20.]]), 0.5)
        tensor([[ 2.5000,  5.0000,  7.5000, 15.0000]])
    """
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    cx = (boxes[:, 2] + boxes[:, 0]) * 0.5
    cy = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)


def centers_inside(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``Tensor[m, n]`` bool: point ``i`` (``Tensor[m, 2]``) lies strictly inside box ``j``."""
    x, y = points[:, 0:1], points[:, 1:2]
    return (x > boxes[:, 0]) & (x < boxes[:, 2]) & (y > boxes[:, 1]) & (y < boxes[:, 3])


def _one_gt_per_prior(
    in_core: torch.Tensor, in_shadow: torch.Tensor, priority: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per prior the 1-based ground truth of highest ``priority`` whose core holds it (0: none),
    and the shadowed ``(prior, 1-based gt)`` pairs: the shadow pairs, then the core pairs that
    lost to a higher priority."""
    num_priors = in_core.size(0)
    assigned = in_core.new_zeros(num_priors, dtype=torch.long)
    shadowed = torch.nonzero(in_shadow, as_tuple=False)
    matched = in_core.any(dim=1)
    if matched.any():
        pair_priority = torch.where(in_core, priority.view(1, -1), priority.new_tensor(-1))
        best = pair_priority[matched].argmax(dim=1)
        assigned[matched] = best + 1
        lost = in_core.clone()
        lost[matched, best] = False
        shadowed = torch.cat([shadowed, torch.nonzero(lost, as_tuple=False)])
    shadowed[:, 1] += 1
    return assigned, shadowed


@TASK_UTILS.register_module()
class CenterRegionAssigner:
    """Assign priors in the centre region of a ground truth to it (see the module docstring).

    Args:
        pos_scale: Scale of the core (positive) region.
        neg_scale: Scale of the shadow region, whose priors are ignored for that class.
        min_pos_iof: IoF with a region above which a prior is in it.
        ignore_gt_scale: Scale of the crowd boxes inside which priors are ignored.
        foreground_dominate: A prior positive for a class and shadowed for the same class
            stays positive (else it becomes background).
        iou_calculator: Config (or instance) of the IoU calculator; default
            ``dict(type='BboxOverlaps2D')``.

    Example:
        >>> assigner = CenterRegionAssigner(pos_scale=0.2, neg_scale=0.2)
        >>> priors = torch.tensor([[0., 0., 10., 10.], [10., 10., 20., 20.]])
        >>> assigner.assign(priors, torch.tensor([[0., 0., 10., 10.]])).gt_inds.tolist()
        [1, 0]
    """

    def __init__(
        self,
        pos_scale: float,
        neg_scale: float,
        min_pos_iof: float = 1e-2,
        ignore_gt_scale: float = 0.5,
        foreground_dominate: bool = False,
        iou_calculator: Mapping[str, Any] | Any = None,
    ) -> None:
        self.pos_scale = pos_scale
        self.neg_scale = neg_scale
        self.min_pos_iof = min_pos_iof
        self.ignore_gt_scale = ignore_gt_scale
        self.foreground_dominate = foreground_dominate
        if iou_calculator is None:
            iou_calculator = dict(type="BboxOverlaps2D")
        if isinstance(iou_calculator, Mapping):
            self.iou_calculator = build_module(iou_calculator, TASK_UTILS)
        else:
            self.iou_calculator = iou_calculator

    @staticmethod
    def get_gt_priorities(gt_bboxes: torch.Tensor) -> torch.Tensor:
        """``Tensor[k]``: the rank of each ground truth's area in a descending sort (the
        smallest box has the highest priority)."""
        areas = (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1])
        _, order = areas.sort(descending=True)
        return order.argsort()

    def assign(
        self,
        bboxes: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None = None,
        gt_labels: torch.Tensor | None = None,
    ) -> AssignResult:
        """Assign ``gt_bboxes`` ``Tensor[k, 4]`` to the priors ``bboxes`` ``Tensor[n, 4]``.

        Returns:
            The :class:`AssignResult` (no ``max_overlaps``: an empty tensor) with the extra
            property ``shadowed_labels``: ``Tensor[s, 2]`` of ``(prior index, class)`` when
            ``gt_labels`` are given, else ``None``.

        Raises:
            ValueError: ``bboxes`` is not ``[n, 4]``.
        """
        if bboxes.dim() != 2 or bboxes.size(1) != 4:
            raise ValueError(
                f"CenterRegionAssigner: bboxes must be [n, 4], got {tuple(bboxes.shape)}"
            )
        num_gts, num_priors = gt_bboxes.size(0), bboxes.size(0)
        centers = (bboxes[:, 2:4] + bboxes[:, 0:2]) / 2
        in_core = centers_inside(centers, gt_bboxes) & (
            self.iou_calculator(bboxes, scale_boxes(gt_bboxes, self.pos_scale), mode="iof")
            > self.min_pos_iof
        )
        in_shadow = (
            self.iou_calculator(bboxes, scale_boxes(gt_bboxes, self.neg_scale), mode="iof")
            > self.min_pos_iof
        ) & ~in_core
        if num_gts == 0 or num_priors == 0:
            gt_inds = bboxes.new_zeros(num_priors, dtype=torch.long)
            shadowed = gt_inds.new_empty((0, 2))
        else:
            gt_inds, shadowed = _one_gt_per_prior(
                in_core, in_shadow, self.get_gt_priorities(gt_bboxes)
            )
        if gt_bboxes_ignore is not None and gt_bboxes_ignore.numel() > 0:
            crowds = scale_boxes(gt_bboxes_ignore, self.ignore_gt_scale)
            gt_inds[centers_inside(centers, crowds).any(dim=1)] = -1

        labels = shadowed_labels = None
        if gt_labels is not None:
            labels = gt_inds.new_full((num_priors,), -1)
            pos = gt_inds > 0
            labels[pos] = gt_labels[gt_inds[pos] - 1]
            shadowed_labels = shadowed.clone()
            if shadowed.numel() > 0:
                prior, gt = shadowed[:, 0], shadowed[:, 1]
                shadowed_labels[:, 1] = gt_labels[gt - 1]
                clash = labels[prior] == shadowed_labels[:, 1]
                if self.foreground_dominate:
                    shadowed_labels = shadowed_labels[~clash]
                else:
                    labels[prior[clash]] = -1
                    gt_inds[prior[clash]] = 0
        result = AssignResult(num_gts, gt_inds, bboxes.new_empty(0), labels=labels)
        result.set_extra_property("shadowed_labels", shadowed_labels)
        return result
