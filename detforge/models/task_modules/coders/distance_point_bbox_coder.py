"""``DistancePointBBoxCoder``: boxes as distances from a point to their four sides (v2.28)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from detforge.errors import InvalidArgumentError
from detforge.registry import TASK_UTILS
from detforge.structures.bbox import bbox2distance

__all__ = ["DistancePointBBoxCoder", "clip_distance_boxes"]

MaxShape = Sequence[int] | Sequence[Sequence[int]] | torch.Tensor


def clip_distance_boxes(boxes: torch.Tensor, max_shape: MaxShape) -> torch.Tensor:
    """Clamp ``x`` to ``[0, W]`` and ``y`` to ``[0, H]`` of ``boxes`` ``Tensor[..., 4]``.

    Args:
        boxes: ``Tensor[N, 4]`` or batched ``Tensor[B, N, 4]``.
        max_shape: ``(H, W[, C])`` for all boxes, or for batched boxes one ``(H, W[, C])`` per
            image (a sequence or a ``Tensor[B, >=2]``).

    Example:
        >>> clip_distance_boxes(torch.tensor([[-1., 2., 9., 12.]]), (10, 8)).tolist()
        [[0.0, 2.0, 8.0, 10.0]]
    """
    shape = torch.as_tensor(max_shape, device=boxes.device)
    if shape.dim() == 1:
        if shape.numel() < 2:
            raise InvalidArgumentError(f"max_shape must be (H, W[, C]), got {max_shape!r}")
        h, w = float(shape[0]), float(shape[1])
        xs = boxes[..., 0::2].clamp(min=0, max=w)
        ys = boxes[..., 1::2].clamp(min=0, max=h)
    else:
        if boxes.dim() != 3 or shape.size(0) != boxes.size(0):
            raise InvalidArgumentError(
                f"per-image max_shape {tuple(shape.shape)} needs boxes [B, N, 4] with the same "
                f"B, got {tuple(boxes.shape)}"
            )
        max_h = shape[:, 0].to(boxes.dtype).view(-1, 1, 1)
        max_w = shape[:, 1].to(boxes.dtype).view(-1, 1, 1)
        xs = boxes[..., 0::2].clamp(min=0)
        xs = torch.where(xs > max_w, max_w.expand_as(xs), xs)
        ys = boxes[..., 1::2].clamp(min=0)
        ys = torch.where(ys > max_h, max_h.expand_as(ys), ys)
    return torch.stack([xs[..., 0], ys[..., 0], xs[..., 1], ys[..., 1]], dim=-1)


@TASK_UTILS.register_module()
class DistancePointBBoxCoder:
    """Encode boxes as ``(left, top, right, bottom)`` distances from points, and back.

    Args:
        clip_border: Clip decoded boxes to ``max_shape`` when one is given.

    Example:
        >>> coder = DistancePointBBoxCoder()
        >>> pts = torch.tensor([[5., 5.]])
        >>> coder.encode(pts, torch.tensor([[4., 3., 8., 9.]])).tolist()
        [[1.0, 2.0, 3.0, 4.0]]
        >>> coder.decode(pts, torch.tensor([[1., 2., 3., 4.]]), max_shape=(8, 7)).tolist()
        [[4.0, 3.0, 7.0, 8.0]]
    """

    def __init__(self, clip_border: bool = True) -> None:
        self.clip_border = clip_border

    def encode(
        self,
        points: torch.Tensor,
        gt_bboxes: torch.Tensor,
        max_dis: float | None = None,
        eps: float = 0.1,
    ) -> torch.Tensor:
        """Distances ``Tensor[N, 4]`` from ``points`` ``Tensor[N, 2]`` to ``gt_bboxes``
        ``Tensor[N, 4]``, each clamped to ``[0, max_dis - eps]`` when ``max_dis`` is given."""
        if points.size(0) != gt_bboxes.size(0) or points.size(-1) != 2 or gt_bboxes.size(-1) != 4:
            raise InvalidArgumentError(
                "DistancePointBBoxCoder.encode: need points [N, 2] and gt_bboxes [N, 4], got "
                f"{tuple(points.shape)} and {tuple(gt_bboxes.shape)}"
            )
        return bbox2distance(points, gt_bboxes, max_dis, eps)

    def decode(
        self,
        points: torch.Tensor,
        pred_bboxes: torch.Tensor,
        max_shape: MaxShape | None = None,
    ) -> torch.Tensor:
        """Boxes ``Tensor[..., 4]`` from ``points`` ``Tensor[..., 2]`` and distances
        ``Tensor[..., 4]``; clipped to ``max_shape`` ``(H, W[, C])`` when ``clip_border``."""
        if (
            points.size(0) != pred_bboxes.size(0)
            or points.size(-1) != 2
            or pred_bboxes.size(-1) != 4
        ):
            raise InvalidArgumentError(
                "DistancePointBBoxCoder.decode: need points [..., 2] and pred_bboxes [..., 4] "
                f"with the same leading size, got {tuple(points.shape)} and "
                f"{tuple(pred_bboxes.shape)}"
            )
        x1 = points[..., 0] - pred_bboxes[..., 0]
        y1 = points[..., 1] - pred_bboxes[..., 1]
        x2 = points[..., 0] + pred_bboxes[..., 2]
        y2 = points[..., 1] + pred_bboxes[..., 3]
        boxes = torch.stack([x1, y1, x2, y2], dim=-1)
        if self.clip_border and max_shape is not None:
            boxes = clip_distance_boxes(boxes, max_shape)
        return boxes
