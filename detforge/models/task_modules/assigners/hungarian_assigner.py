"""``HungarianAssigner``: one-to-one matching of queries to ground truths, MMDetection v2.28.

The cost of query ``i`` and ground truth ``j`` is the sum of three weighted match costs
(``detforge.models.task_modules.match_costs``):

- ``cls_cost(cls_pred, gt_labels)`` on the class logits;
- ``reg_cost(bbox_pred, gt_bboxes / factor)``: the predictions are *normalised*
  ``cx, cy, w, h`` and the ground truths are divided by ``factor = [w, h, w, h]`` of
  ``img_meta['img_shape']`` (the resized, unpadded image);
- ``iou_cost(cxcywh_to_xyxy(bbox_pred) * factor, gt_bboxes)`` in absolute pixels.

``scipy.optimize.linear_sum_assignment`` minimises the total cost on the CPU. Matched queries
get ``gt_inds = j + 1`` and the ground truth's label, all others ``0`` (background) and label
``-1``. Without ground truths every query is background; without queries the result is empty.
``max_overlaps`` is not defined for this assigner (v2 leaves it ``None``): it is all zeros here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch

from detforge.models.task_modules import match_costs  # noqa: F401 (registers the costs)
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.registry import TASK_UTILS, build_module
from detforge.structures.bbox import bbox_cxcywh_to_xyxy

__all__ = ["HungarianAssigner", "linear_sum_assignment"]

_CLS_COST = MappingProxyType(dict(type="ClassificationCost", weight=1.0))
_REG_COST = MappingProxyType(dict(type="BBoxL1Cost", weight=1.0))
_IOU_COST = MappingProxyType(dict(type="IoUCost", iou_mode="giou", weight=1.0))


def linear_sum_assignment(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost one-to-one matching of the rows and columns of ``cost`` (scipy, on the CPU).

    Args:
        cost: ``Tensor[R, C]``.

    Returns:
        ``(rows, cols)`` int64 on ``cost``'s device, ``min(R, C)`` pairs, rows ascending.

    Example:
        >>> rows, cols = linear_sum_assignment(torch.tensor([[4., 1.], [2., 0.], [3., 2.]]))
        >>> rows.tolist(), cols.tolist()
        ([0, 1], [1, 0])
    """
    try:
        from scipy.optimize import linear_sum_assignment as _scipy_lsa
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "HungarianAssigner (DETR, Sparse R-CNN, QueryInst training) needs scipy "
            "(pip install scipy)"
        ) from exc
    rows, cols = _scipy_lsa(cost.detach().cpu().numpy())
    return (
        torch.from_numpy(rows).long().to(cost.device),
        torch.from_numpy(cols).long().to(cost.device),
    )


@TASK_UTILS.register_module()
class HungarianAssigner:
    """Match queries to ground truths one-to-one (``mmdet.core.bbox.HungarianAssigner``).

    Args:
        cls_cost: Config (or instance) of the classification cost.
        reg_cost: Config (or instance) of the L1 box cost on normalised boxes.
        iou_cost: Config (or instance) of the overlap cost on absolute boxes.

    Example:
        >>> assigner = HungarianAssigner()
        >>> result = assigner.assign(
        ...     torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]),
        ...     torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
        ...     torch.tensor([[50., 50., 100., 100.]]), torch.tensor([1]),
        ...     dict(img_shape=(100, 100, 3)))
        >>> result.gt_inds.tolist(), result.labels.tolist()
        ([0, 1], [-1, 1])
    """

    def __init__(
        self,
        cls_cost: Mapping[str, Any] | Any = _CLS_COST,
        reg_cost: Mapping[str, Any] | Any = _REG_COST,
        iou_cost: Mapping[str, Any] | Any = _IOU_COST,
    ) -> None:
        self.cls_cost = build_module(cls_cost, TASK_UTILS)
        self.reg_cost = build_module(reg_cost, TASK_UTILS)
        self.iou_cost = build_module(iou_cost, TASK_UTILS)

    def cost_matrix(
        self,
        bbox_pred: torch.Tensor,
        cls_pred: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
        img_meta: Mapping[str, Any],
    ) -> torch.Tensor:
        """The summed cost ``Tensor[num_query, num_gt]`` (arguments as in :meth:`assign`)."""
        img_h, img_w = img_meta["img_shape"][:2]
        factor = gt_bboxes.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
        cls_cost = self.cls_cost(cls_pred, gt_labels)
        reg_cost = self.reg_cost(bbox_pred, gt_bboxes / factor)
        iou_cost = self.iou_cost(bbox_cxcywh_to_xyxy(bbox_pred) * factor, gt_bboxes)
        cost: torch.Tensor = cls_cost + reg_cost + iou_cost
        return cost

    def assign(
        self,
        bbox_pred: torch.Tensor,
        cls_pred: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
        img_meta: Mapping[str, Any],
        gt_bboxes_ignore: torch.Tensor | None = None,
        eps: float = 1e-7,
    ) -> AssignResult:
        """Assign every query to one ground truth or to the background.

        Args:
            bbox_pred: ``Tensor[num_query, 4]`` normalised ``cx, cy, w, h`` in ``[0, 1]``.
            cls_pred: ``Tensor[num_query, num_classes]`` class logits.
            gt_bboxes: ``Tensor[num_gt, 4]`` absolute ``x1, y1, x2, y2``.
            gt_labels: ``Tensor[num_gt]`` int64 labels.
            img_meta: The image's meta; ``img_shape`` ``(h, w, ...)`` sets the normalisation.
            gt_bboxes_ignore: ``None`` or empty (ignored boxes are not supported, as in v2).
            eps: Unused; kept for v2's signature.

        Returns:
            The ``AssignResult``: ``gt_inds`` 0 (background) or ``j + 1``, ``labels`` -1 or the
            matched ground truth's label.

        Raises:
            ValueError: ``gt_bboxes_ignore`` holds boxes.
        """
        if gt_bboxes_ignore is not None and gt_bboxes_ignore.numel() > 0:
            raise ValueError(
                f"HungarianAssigner: gt_bboxes_ignore is not supported, got "
                f"{len(gt_bboxes_ignore)} boxes (pass None)"
            )
        num_gts, num_queries = gt_bboxes.size(0), bbox_pred.size(0)
        gt_inds = bbox_pred.new_zeros((num_queries,), dtype=torch.long)
        labels = bbox_pred.new_full((num_queries,), -1, dtype=torch.long)
        max_overlaps = bbox_pred.new_zeros((num_queries,))
        if num_gts == 0 or num_queries == 0:
            return AssignResult(num_gts, gt_inds, max_overlaps, labels=labels)
        cost = self.cost_matrix(bbox_pred, cls_pred, gt_bboxes, gt_labels, img_meta)
        rows, cols = linear_sum_assignment(cost)
        gt_inds[rows] = cols + 1
        labels[rows] = gt_labels[cols]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels=labels)
