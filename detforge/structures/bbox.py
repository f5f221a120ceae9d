"""Box operations: overlaps (IoU/IoF/GIoU), format conversions, flips, mapping and RoIs.

Boxes are ``x1, y1, x2, y2`` in absolute pixels with width ``x2 - x1`` (no +1). Functions
that MMDetection v2 offers for both numpy arrays and torch tensors accept either and return
the same kind they were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from detforge.errors import InvalidArgumentError

__all__ = [
    "bbox2distance",
    "bbox2result",
    "bbox2roi",
    "bbox_clip",
    "bbox_cxcywh_to_xyxy",
    "bbox_flip",
    "bbox_mapping",
    "bbox_mapping_back",
    "bbox_overlaps",
    "bbox_rescale",
    "bbox_xywh_to_xyxy",
    "bbox_xyxy_to_cxcywh",
    "bbox_xyxy_to_xywh",
    "clip_to_max_shapes",
    "distance2bbox",
    "roi2bbox",
]

BoxT = TypeVar("BoxT", np.ndarray, torch.Tensor)

_OVERLAP_MODES = ("iou", "iof", "giou")
_FLIP_DIRECTIONS = ("horizontal", "vertical", "diagonal")


def _stack_last(parts: Sequence[BoxT], like: BoxT) -> BoxT:
    if isinstance(like, torch.Tensor):
        return torch.stack(list(parts), dim=-1)
    return np.stack(parts, axis=-1)


def _copy(boxes: BoxT) -> BoxT:
    return boxes.clone() if isinstance(boxes, torch.Tensor) else boxes.copy()


def _check_last_dim(boxes: np.ndarray | torch.Tensor, name: str, multiple: bool = False) -> None:
    size = boxes.shape[-1] if boxes.ndim else 0
    ok = size % 4 == 0 if multiple else size == 4
    if not ok:
        want = "a multiple of 4" if multiple else "4"
        raise InvalidArgumentError(
            f"{name}: last dimension must be {want}, got shape {tuple(boxes.shape)}"
        )


def bbox_overlaps(
    bboxes1: BoxT,
    bboxes2: BoxT,
    mode: str = "iou",
    is_aligned: bool = False,
    eps: float = 1e-6,
) -> BoxT:
    """IoU, IoF (intersection over ``bboxes1``'s area) or GIoU between two sets of boxes.

    Args:
        bboxes1: ``Tensor[..., M, 4]`` (the last dimension may differ only when ``M == 0``).
        bboxes2: ``Tensor[..., N, 4]`` with the same leading (batch) dimensions.
        mode: ``'iou'``, ``'iof'`` or ``'giou'``.
        is_aligned: Compare row ``i`` with row ``i`` only (needs ``M == N``).
        eps: Lower bound of the union (and enclosing area) to avoid division by zero.

    Returns:
        ``Tensor[..., M, N]``, or ``Tensor[..., M]`` when aligned. An ndarray for ndarray
        inputs. Empty inputs give empty outputs of those shapes.

    Example:
        >>> a = torch.tensor([[0., 0., 10., 10.], [10., 10., 20., 20.], [32., 32., 38., 42.]])
        >>> b = torch.tensor([[0., 0., 10., 20.], [0., 10., 10., 19.], [10., 10., 20., 20.]])
        >>> [round(v, 4) for v in bbox_overlaps(a, b, mode='giou', is_aligned=True).tolist()]
        [0.5, -0.05, -0.8214]
    """
    if mode not in _OVERLAP_MODES:
        raise InvalidArgumentError(
            f"bbox_overlaps: mode must be one of {_OVERLAP_MODES}, got {mode!r}"
        )
    if isinstance(bboxes1, np.ndarray):
        out = bbox_overlaps(
            torch.from_numpy(np.asarray(bboxes1)),
            torch.from_numpy(np.asarray(bboxes2)),
            mode,
            is_aligned,
            eps,
        )
        return out.numpy()
    if bboxes1.ndim < 2 or bboxes2.ndim < 2:
        raise InvalidArgumentError(
            f"bbox_overlaps: boxes must be [..., N, 4], got shapes {tuple(bboxes1.shape)} "
            f"and {tuple(bboxes2.shape)}"
        )
    rows, cols = bboxes1.shape[-2], bboxes2.shape[-2]
    if rows:
        _check_last_dim(bboxes1, "bbox_overlaps bboxes1")
    if cols:
        _check_last_dim(bboxes2, "bbox_overlaps bboxes2")
    if bboxes1.shape[:-2] != bboxes2.shape[:-2]:
        raise InvalidArgumentError(
            f"bbox_overlaps: batch dimensions differ: {tuple(bboxes1.shape[:-2])} vs "
            f"{tuple(bboxes2.shape[:-2])}"
        )
    if is_aligned and rows != cols:
        raise InvalidArgumentError(
            f"bbox_overlaps: is_aligned needs equal counts, got {rows} and {cols}"
        )
    batch: tuple[int, ...] = tuple(int(d) for d in bboxes1.shape[:-2])
    if rows * cols == 0:
        shape = (*batch, rows) if is_aligned else (*batch, rows, cols)
        return bboxes1.new_zeros(shape)

    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    if is_aligned:
        b1, b2 = bboxes1, bboxes2
        a1, a2 = area1, area2
    else:
        b1, b2 = bboxes1[..., :, None, :], bboxes2[..., None, :, :]
        a1, a2 = area1[..., :, None], area2[..., None, :]
    lt = torch.max(b1[..., :2], b2[..., :2])
    rb = torch.min(b1[..., 2:], b2[..., 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = a1 + a2 - overlap if mode in ("iou", "giou") else a1.expand_as(overlap)
    eps_t = union.new_tensor([eps])
    union = torch.max(union, eps_t)
    ious = overlap / union
    if mode != "giou":
        return ious
    enclose_wh = (torch.max(b1[..., 2:], b2[..., 2:]) - torch.min(b1[..., :2], b2[..., :2])).clamp(
        min=0
    )
    enclose_area = torch.max(enclose_wh[..., 0] * enclose_wh[..., 1], eps_t)
    return ious - (enclose_area - union) / enclose_area


# ----------------------------------------------------------------------------- conversions


def bbox_xyxy_to_xywh(bboxes: BoxT) -> BoxT:
    """``x1, y1, x2, y2`` to ``x, y, w, h`` (COCO's json format).

    Example:
        >>> bbox_xyxy_to_xywh(np.array([[1., 2., 4., 8.]])).tolist()
        [[1.0, 2.0, 3.0, 6.0]]
    """
    x1, y1, x2, y2 = (bboxes[..., i] for i in range(4))
    return _stack_last([x1, y1, x2 - x1, y2 - y1], bboxes)


def bbox_xywh_to_xyxy(bboxes: BoxT) -> BoxT:
    """``x, y, w, h`` to ``x1, y1, x2, y2``.

    Example:
        >>> bbox_xywh_to_xyxy(torch.tensor([[1., 2., 3., 6.]])).tolist()
        [[1.0, 2.0, 4.0, 8.0]]
    """
    x, y, w, h = (bboxes[..., i] for i in range(4))
    return _stack_last([x, y, x + w, y + h], bboxes)


def bbox_xyxy_to_cxcywh(bboxes: BoxT) -> BoxT:
    """``x1, y1, x2, y2`` to centre ``cx, cy, w, h``.

    Example:
        >>> bbox_xyxy_to_cxcywh(np.array([[0., 0., 4., 2.]])).tolist()
        [[2.0, 1.0, 4.0, 2.0]]
    """
    x1, y1, x2, y2 = (bboxes[..., i] for i in range(4))
    return _stack_last([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], bboxes)


def bbox_cxcywh_to_xyxy(bboxes: BoxT) -> BoxT:
    """Centre ``cx, cy, w, h`` to ``x1, y1, x2, y2``.

    Example:
        >>> bbox_cxcywh_to_xyxy(torch.tensor([[2., 1., 4., 2.]])).tolist()
        [[0.0, 0.0, 4.0, 2.0]]
    """
    cx, cy, w, h = (bboxes[..., i] for i in range(4))
    return _stack_last([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], bboxes)


# ----------------------------------------------------------------------------- geometry


def bbox_flip(bboxes: BoxT, img_shape: Sequence[int], direction: str = "horizontal") -> BoxT:
    """Mirror boxes in an image of ``img_shape = (h, w, ...)``: ``x1' = w - x2`` (no -1).

    Args:
        bboxes: ``[..., 4k]`` boxes (several boxes per row are allowed, as in mmdet).
        img_shape: ``(h, w)`` or ``(h, w, c)``.
        direction: ``'horizontal'``, ``'vertical'`` or ``'diagonal'``.

    Example:
        >>> bbox_flip(np.array([[1., 2., 3., 5.]]), (10, 20), 'diagonal').tolist()
        [[17.0, 5.0, 19.0, 8.0]]
    """
    _check_last_dim(bboxes, "bbox_flip bboxes", multiple=True)
    if direction not in _FLIP_DIRECTIONS:
        raise InvalidArgumentError(
            f"bbox_flip: direction must be one of {_FLIP_DIRECTIONS}, got {direction!r}"
        )
    h, w = img_shape[0], img_shape[1]
    flipped = _copy(bboxes)
    if direction in ("horizontal", "diagonal"):
        flipped[..., 0::4] = w - bboxes[..., 2::4]
        flipped[..., 2::4] = w - bboxes[..., 0::4]
    if direction in ("vertical", "diagonal"):
        flipped[..., 1::4] = h - bboxes[..., 3::4]
        flipped[..., 3::4] = h - bboxes[..., 1::4]
    return flipped


def bbox_clip(bboxes: BoxT, img_shape: Sequence[int]) -> BoxT:
    """Clip x to ``[0, w]`` and y to ``[0, h]`` (``img_shape = (h, w, ...)``).

    Example:
        >>> bbox_clip(np.array([[-3., 2., 30., 12.]]), (10, 20)).tolist()
        [[0.0, 2.0, 20.0, 10.0]]
    """
    _check_last_dim(bboxes, "bbox_clip bboxes", multiple=True)
    h, w = img_shape[0], img_shape[1]
    out = _copy(bboxes)
    if isinstance(out, torch.Tensor):
        out[..., 0::2] = out[..., 0::2].clamp(0, w)
        out[..., 1::2] = out[..., 1::2].clamp(0, h)
    else:
        out[..., 0::2] = np.clip(out[..., 0::2], 0, w)
        out[..., 1::2] = np.clip(out[..., 1::2], 0, h)
    return out


def bbox_rescale(bboxes: BoxT, scale_factor: float = 1.0) -> BoxT:
    """Scale boxes' width and height about their centres (RoIs with 5 columns keep index 0).

    Example:
        >>> bbox_rescale(torch.tensor([[0., 1., 2., 3., 5.]]), 2.0).tolist()
        [[0.0, 0.0, 0.5, 4.0, 6.5]]
    """
    is_roi = bboxes.shape[-1] == 5
    boxes = bboxes[..., 1:] if is_roi else bboxes
    cx = (boxes[..., 0] + boxes[..., 2]) * 0.5
    cy = (boxes[..., 1] + boxes[..., 3]) * 0.5
    w = (boxes[..., 2] - boxes[..., 0]) * scale_factor
    h = (boxes[..., 3] - boxes[..., 1]) * scale_factor
    parts = [cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h]
    if is_roi:
        parts.insert(0, bboxes[..., 0])
    return _stack_last(parts, bboxes)


def _as_scale(scale_factor: float | Sequence[float] | np.ndarray, like: BoxT) -> BoxT:
    arr = np.asarray(scale_factor, dtype=np.float64)
    if isinstance(like, torch.Tensor):
        return like.new_tensor(arr.tolist())
    return arr.astype(like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64)


def bbox_mapping(
    bboxes: BoxT,
    img_shape: Sequence[int],
    scale_factor: float | Sequence[float] | np.ndarray,
    flip: bool,
    flip_direction: str = "horizontal",
) -> BoxT:
    """Map boxes from the original image into an augmented (scaled, then flipped) view.

    Args:
        bboxes: ``[N, 4]`` boxes in the original image.
        img_shape: Shape of the augmented image (used by the flip).
        scale_factor: One number or ``[w, h, w, h]``.
        flip: Whether the view is flipped.
        flip_direction: Flip direction of the view.

    Example:
        >>> bbox_mapping(torch.tensor([[1., 1., 2., 3.]]), (20, 20), 2.0, True).tolist()
        [[16.0, 2.0, 18.0, 6.0]]
    """
    mapped = bboxes * _as_scale(scale_factor, bboxes)
    return bbox_flip(mapped, img_shape, flip_direction) if flip else mapped


def bbox_mapping_back(
    bboxes: BoxT,
    img_shape: Sequence[int],
    scale_factor: float | Sequence[float] | np.ndarray,
    flip: bool,
    flip_direction: str = "horizontal",
) -> BoxT:
    """Inverse of :func:`bbox_mapping`: un-flip, then divide by the scale factor.

    Example:
        >>> bbox_mapping_back(torch.tensor([[16., 2., 18., 6.]]), (20, 20), 2.0, True).tolist()
        [[1.0, 1.0, 2.0, 3.0]]
    """
    unflipped = bbox_flip(bboxes, img_shape, flip_direction) if flip else bboxes
    flat = unflipped.reshape(-1, 4) / _as_scale(scale_factor, bboxes)
    return flat.reshape(bboxes.shape)


# ----------------------------------------------------------------------------- RoIs and results


def bbox2roi(bbox_list: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image boxes to one ``Tensor[K, 5]`` of ``(batch_index, x1, y1, x2, y2)``.

    Example:
        >>> bbox2roi([torch.ones(1, 4), torch.zeros(0, 4), torch.ones(2, 5)]).tolist()
        [[0.0, 1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0, 1.0]]
    """
    rois = []
    for img_id, bboxes in enumerate(bbox_list):
        if bboxes.shape[0] > 0:
            index = bboxes.new_full((bboxes.shape[0], 1), img_id)
            rois.append(torch.cat([index, bboxes[:, :4]], dim=-1))
        else:
            rois.append(bboxes.new_zeros((0, 5)))
    if not rois:
        return torch.zeros((0, 5))
    return torch.cat(rois, dim=0)


def roi2bbox(rois: torch.Tensor) -> list[torch.Tensor]:
    """Split ``Tensor[K, 5]`` RoIs into per-image box tensors (images with RoIs only).

    Example:
        >>> [b.shape[0] for b in roi2bbox(torch.tensor([[0., 1, 1, 2, 2], [2., 0, 0, 1, 1]]))]
        [1, 1]
    """
    out = []
    for img_id in torch.unique(rois[:, 0].cpu(), sorted=True):
        out.append(rois[rois[:, 0] == img_id.item(), 1:])
    return out


def bbox2result(
    bboxes: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, num_classes: int
) -> list[np.ndarray]:
    """Detections to the v2 result: a list over classes of ``ndarray[n, 5]`` (box + score).

    Args:
        bboxes: ``[N, 5]`` boxes with scores.
        labels: ``[N]`` labels in ``[0, num_classes)``.
        num_classes: Number of foreground classes.

    Example:
        >>> res = bbox2result(torch.tensor([[0., 0., 1., 1., .9]]), torch.tensor([1]), 3)
        >>> [r.shape for r in res]
        [(0, 5), (1, 5), (0, 5)]
    """
    if bboxes.shape[0] == 0:
        return [np.zeros((0, 5), dtype=np.float32) for _ in range(num_classes)]
    if isinstance(bboxes, torch.Tensor):
        bboxes = bboxes.detach().cpu().numpy()
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    return [bboxes[labels == i, :] for i in range(num_classes)]


def clip_to_max_shapes(
    bboxes: torch.Tensor,
    max_shape: Sequence[int] | Sequence[Sequence[int]] | torch.Tensor,
    where: str = "clip_to_max_shapes",
) -> torch.Tensor:
    """Clip boxes ``[..., 4k]`` to ``[0, w]``/``[0, h]``: one ``(h, w[, c])`` for all, or for
    batched boxes ``[B, N, 4k]`` one shape per image (``[B, 2+]``), as v2's batched decoders.

    Raises:
        ValueError: per-image shapes for unbatched boxes, or their count is not the batch size;
            ``where`` (the caller's name) starts the message.

    Example:
        >>> boxes = torch.tensor([[[-1., 2., 30., 30.]], [[-1., 2., 30., 30.]]])
        >>> clip_to_max_shapes(boxes, [(10, 20), (20, 10)]).tolist()
        [[[0.0, 2.0, 20.0, 10.0]], [[0.0, 2.0, 10.0, 20.0]]]
    """
    shapes = max_shape if isinstance(max_shape, torch.Tensor) else bboxes.new_tensor(max_shape)
    shapes = shapes[..., :2].type_as(bboxes)
    if shapes.ndim == 2 and (bboxes.ndim != 3 or shapes.size(0) != bboxes.size(0)):
        raise InvalidArgumentError(
            f"{where}: {shapes.size(0)} max_shapes need batched boxes [B={shapes.size(0)}, N, 4], "
            f"got boxes of shape {tuple(bboxes.shape)}"
        )
    max_xy = torch.cat([shapes] * (bboxes.size(-1) // 2), dim=-1).flip(-1).unsqueeze(-2)
    min_xy = bboxes.new_tensor(0)
    bboxes = torch.where(bboxes < min_xy, min_xy, bboxes)
    return torch.where(bboxes > max_xy, max_xy, bboxes)


def distance2bbox(
    points: torch.Tensor,
    distance: torch.Tensor,
    max_shape: Sequence[int] | Sequence[Sequence[int]] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Boxes from points and their distances ``(left, top, right, bottom)`` to the sides.

    Args:
        points: ``Tensor[N, 2]`` or ``Tensor[B, N, 2]``.
        distance: ``Tensor[N, 4]`` or ``Tensor[B, N, 4]``.
        max_shape: ``(h, w[, c])`` to clip to; for batched input one shape for all images or
            one per image (v2).

    Example:
        >>> distance2bbox(torch.tensor([[5., 5.]]), torch.tensor([[1., 2., 3., 4.]])).tolist()
        [[4.0, 3.0, 8.0, 9.0]]
    """
    x1 = points[..., 0] - distance[..., 0]
    y1 = points[..., 1] - distance[..., 1]
    x2 = points[..., 0] + distance[..., 2]
    y2 = points[..., 1] + distance[..., 3]
    boxes = torch.stack([x1, y1, x2, y2], dim=-1)
    if max_shape is None:
        return boxes
    return clip_to_max_shapes(boxes, max_shape, where="distance2bbox")


def bbox2distance(
    points: torch.Tensor, bbox: torch.Tensor, max_dis: float | None = None, eps: float = 0.1
) -> torch.Tensor:
    """Distances ``(left, top, right, bottom)`` from points to box sides, optionally capped
    at ``max_dis - eps``.

    Example:
        >>> bbox2distance(torch.tensor([[5., 5.]]), torch.tensor([[4., 3., 8., 9.]])).tolist()
        [[1.0, 2.0, 3.0, 4.0]]
    """
    left = points[:, 0] - bbox[:, 0]
    top = points[:, 1] - bbox[:, 1]
    right = bbox[:, 2] - points[:, 0]
    bottom = bbox[:, 3] - points[:, 1]
    if max_dis is not None:
        left, top, right, bottom = (
            d.clamp(min=0, max=max_dis - eps) for d in (left, top, right, bottom)
        )
    return torch.stack([left, top, right, bottom], -1)
