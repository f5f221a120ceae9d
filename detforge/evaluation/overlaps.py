"""Pairwise IoU / IoF of numpy boxes, as the evaluation code of MMDetection v2 computes it.

v2 calls this ``mmdet.core.evaluation.bbox_overlaps``; here it is :func:`bbox_overlaps_np`, a
name apart from the model side's :func:`detforge.structures.bbox.bbox_overlaps` (torch first,
with ``giou``, ``is_aligned`` and batches, but without ``use_legacy_coordinate``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bbox_overlaps_np"]


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"{name} must have shape [N, 4] (or [N, 4+k]), got {arr.shape}")
    return arr[:, :4].astype(np.float32)


def bbox_overlaps_np(
    bboxes1: np.ndarray,
    bboxes2: np.ndarray,
    mode: str = "iou",
    eps: float = 1e-6,
    use_legacy_coordinate: bool = False,
) -> np.ndarray:
    """Overlap of every box in ``bboxes1`` with every box in ``bboxes2``.

    The arithmetic is done in float32 like MMDetection v2, so thresholds compare equal to v2's.
    Columns after the fourth (e.g. a score) are ignored.

    Args:
        bboxes1: ``ndarray[N, 4]`` boxes ``x1, y1, x2, y2``.
        bboxes2: ``ndarray[K, 4]`` boxes.
        mode: ``'iou'`` (intersection over union) or ``'iof'`` (intersection over the area of
            the box from ``bboxes1``).
        eps: Lower bound of the denominator.
        use_legacy_coordinate: Count the end pixel (width ``x2 - x1 + 1``), as MMDetection v1
            and the Pascal VOC devkit do.

    Returns:
        ``ndarray[N, K]`` float32 overlaps.

    Example:
        >>> a = np.array([[0, 0, 10, 10]])
        >>> b = np.array([[0, 0, 10, 20], [5, 5, 15, 15]])
        >>> print(bbox_overlaps_np(a, b).round(4))
        [[0.5    0.1429]]
        >>> print(bbox_overlaps_np(a, b, mode='iof'))
        [[1.   0.25]]
    """
    if mode not in ("iou", "iof"):
        raise ValueError(f"mode must be 'iou' or 'iof', got {mode!r}")
    b1 = _as_boxes(bboxes1, "bboxes1")
    b2 = _as_boxes(bboxes2, "bboxes2")
    extra = np.float32(1.0 if use_legacy_coordinate else 0.0)
    if b1.shape[0] == 0 or b2.shape[0] == 0:
        return np.zeros((b1.shape[0], b2.shape[0]), dtype=np.float32)
    area1 = (b1[:, 2] - b1[:, 0] + extra) * (b1[:, 3] - b1[:, 1] + extra)
    area2 = (b2[:, 2] - b2[:, 0] + extra) * (b2[:, 3] - b2[:, 1] + extra)
    x1 = np.maximum(b1[:, None, 0], b2[None, :, 0])
    y1 = np.maximum(b1[:, None, 1], b2[None, :, 1])
    x2 = np.minimum(b1[:, None, 2], b2[None, :, 2])
    y2 = np.minimum(b1[:, None, 3], b2[None, :, 3])
    overlap = np.maximum(x2 - x1 + extra, np.float32(0)) * np.maximum(
        y2 - y1 + extra, np.float32(0)
    )
    if mode == "iou":
        union = area1[:, None] + area2[None, :] - overlap
    else:
        union = np.broadcast_to(area1[:, None], overlap.shape)
    union = np.maximum(union, np.float32(eps))
    return (overlap / union).astype(np.float32)
