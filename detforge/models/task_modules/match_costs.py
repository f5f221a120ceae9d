"""Match costs of the one-to-one (Hungarian) assigners, MMDetection v2.28, in ``TASK_UTILS``.

Each cost maps predictions ``[num_query, ...]`` and ground truths ``[num_gt, ...]`` to a cost
matrix ``[num_query, num_gt]`` (lower is a better match), multiplied by ``weight``. Constants
that shift a whole matrix are left out, as in v2, because they do not change the matching:

- ``ClassificationCost``: ``-softmax(cls_pred)[:, gt_labels]`` (DETR's ``1 - p``, minus the 1).
- ``FocalLossCost``: with ``p = sigmoid(cls_pred)``,
  ``pos = -log(p + eps) * alpha * (1 - p) ** gamma`` and
  ``neg = -log(1 - p + eps) * (1 - alpha) * p ** gamma``; the cost is ``pos - neg`` at the
  ground-truth labels. With ``binary_input`` the inputs are masks ``[num_query, *]`` and
  ``[num_gt, *]`` (0/1): ``(pos @ gt.T + neg @ (1 - gt).T) / num_pixels``.
- ``BBoxL1Cost``: L1 distance (``torch.cdist``, p=1) of *normalised* boxes. Predictions come
  as ``cx, cy, w, h``; ``box_format='xyxy'`` (DETR) turns them into corners,
  ``box_format='xywh'`` (Sparse R-CNN) turns the ground truths (``x1, y1, x2, y2``) into
  ``cx, cy, w, h`` instead.
- ``IoUCost``: ``-bbox_overlaps(bboxes, gt_bboxes, mode=iou_mode)`` of absolute corner boxes.
"""

from __future__ import annotations

import torch

from detforge.errors import ConfigValueError
from detforge.registry import TASK_UTILS
from detforge.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh

__all__ = ["BBoxL1Cost", "ClassificationCost", "FocalLossCost", "IoUCost"]

_BOX_FORMATS = ("xyxy", "xywh")
_IOU_MODES = ("iou", "iof", "giou")


@TASK_UTILS.register_module()
class ClassificationCost:
    """Softmax classification cost (``mmdet.core.bbox.match_costs.ClassificationCost``).

    Args:
        weight: Factor on the cost.

    Example:
        >>> cost = ClassificationCost(weight=2.0)
        >>> cost(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([1])).round(decimals=4)
        tensor([[-1.0000],
                [-0.5379]])
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, cls_pred: torch.Tensor, gt_labels: torch.Tensor) -> torch.Tensor:
        """Cost ``[num_query, num_gt]`` of logits ``[num_query, C]`` against labels ``[num_gt]``."""
        return -cls_pred.softmax(-1)[:, gt_labels] * self.weight


@TASK_UTILS.register_module()
class FocalLossCost:
    """Sigmoid focal-loss classification cost (``mmdet.core.bbox.match_costs.FocalLossCost``).

    Args:
        weight: Factor on the cost.
        alpha: Focal loss alpha.
        gamma: Focal loss gamma.
        eps: Added inside the logarithms.
        binary_input: The inputs are binary masks (``[num_query, *]`` logits against
            ``[num_gt, *]`` 0/1 targets) instead of class logits and labels.

    Example:
        >>> cost = FocalLossCost()
        >>> cost(torch.tensor([[0.0, 2.0]]), torch.tensor([1, 0])).round(decimals=4)
        tensor([[-1.2371, -0.0866]])
    """

    def __init__(
        self,
        weight: float = 1.0,
        alpha: float = 0.25,
        gamma: float = 2,
        eps: float = 1e-12,
        binary_input: bool = False,
    ) -> None:
        self.weight = weight
        self.alpha = alpha
        self.gamma = gamma
        self.eps = eps
        self.binary_input = binary_input

    def _pos_neg(self, cls_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = cls_pred.sigmoid()
        neg = -(1 - p + self.eps).log() * (1 - self.alpha) * p.pow(self.gamma)
        pos = -(p + self.eps).log() * self.alpha * (1 - p).pow(self.gamma)
        return pos, neg

    def __call__(self, cls_pred: torch.Tensor, gt_labels: torch.Tensor) -> torch.Tensor:
        """Cost ``[num_query, num_gt]`` (see the class description for the inputs)."""
        if self.binary_input:
            pred = cls_pred.flatten(1)
            gt = gt_labels.flatten(1).float()
            pos, neg = self._pos_neg(pred)
            cost = (pos @ gt.T + neg @ (1 - gt).T) / pred.shape[1]
            return cost * self.weight
        pos, neg = self._pos_neg(cls_pred)
        return (pos[:, gt_labels] - neg[:, gt_labels]) * self.weight


@TASK_UTILS.register_module()
class BBoxL1Cost:
    """L1 cost of normalised boxes (``mmdet.core.bbox.match_costs.BBoxL1Cost``).

    Args:
        weight: Factor on the cost.
        box_format: ``'xyxy'`` (DETR: compare corners) or ``'xywh'`` (Sparse R-CNN: compare
            centre, width and height).

    Example:
        >>> cost = BBoxL1Cost(box_format='xywh')
        >>> cost(torch.tensor([[0.5, 0.5, 0.2, 0.2]]), torch.tensor([[0.4, 0.4, 0.6, 0.8]]))
        tensor([[0.3000]])
    """

    def __init__(self, weight: float = 1.0, box_format: str = "xyxy") -> None:
        if box_format not in _BOX_FORMATS:
            raise ConfigValueError(
                f"BBoxL1Cost: box_format must be one of {_BOX_FORMATS}, got {box_format!r}"
            )
        self.weight = weight
        self.box_format = box_format

    def __call__(self, bbox_pred: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """Cost ``[num_query, num_gt]``.

        Args:
            bbox_pred: ``Tensor[num_query, 4]`` normalised ``cx, cy, w, h``.
            gt_bboxes: ``Tensor[num_gt, 4]`` normalised ``x1, y1, x2, y2``.
        """
        if self.box_format == "xywh":
            gt_bboxes = bbox_xyxy_to_cxcywh(gt_bboxes)
        else:
            bbox_pred = bbox_cxcywh_to_xyxy(bbox_pred)
        return torch.cdist(bbox_pred, gt_bboxes, p=1) * self.weight


@TASK_UTILS.register_module()
class IoUCost:
    """Negative-overlap cost (``mmdet.core.bbox.match_costs.IoUCost``).

    Args:
        iou_mode: ``'giou'``, ``'iou'`` or ``'iof'``.
        weight: Factor on the cost.

    Example:
        >>> boxes = torch.tensor([[1., 1., 2., 2.], [2., 2., 3., 4.]])
        >>> gts = torch.tensor([[0., 0., 2., 4.], [1., 2., 3., 4.]])
        >>> [[round(v, 4) for v in row] for row in IoUCost()(boxes, gts).tolist()]
        [[-0.125, 0.1667], [0.1667, -0.5]]
    """

    def __init__(self, iou_mode: str = "giou", weight: float = 1.0) -> None:
        if iou_mode not in _IOU_MODES:
            raise ConfigValueError(
                f"IoUCost: iou_mode must be one of {_IOU_MODES}, got {iou_mode!r}"
            )
        self.weight = weight
        self.iou_mode = iou_mode

    def __call__(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """Cost ``[num_query, num_gt]`` of absolute ``x1, y1, x2, y2`` boxes."""
        return -bbox_overlaps(bboxes, gt_bboxes, mode=self.iou_mode) * self.weight
