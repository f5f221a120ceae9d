"""From v2 results (per class ``ndarray [n, 5]``, optionally with masks) to JSON and pictures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

__all__ = ["draw_result", "result_to_arrays", "result_to_detections"]


def result_to_arrays(
    result: Any, score_thr: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(bboxes [N, 5], labels [N], masks [N, H, W] | None)`` of one image's v2 result,
    keeping detections whose score is ``> score_thr`` (v2's ``show_result`` rule), sorted by
    descending score.

    Example:
        >>> per_class = [np.array([[0, 0, 4, 4, 0.2]], np.float32),
        ...              np.array([[1, 1, 5, 5, 0.9]], np.float32)]
        >>> bboxes, labels, masks = result_to_arrays(per_class, score_thr=0.1)
        >>> labels.tolist(), [round(float(s), 2) for s in bboxes[:, 4]], masks
        ([1, 0], [0.9, 0.2], None)
    """
    if isinstance(result, tuple):
        bbox_result, segm_result = result[0], result[1]
        if isinstance(segm_result, tuple):  # (segms, mask scores) as some v2 heads return
            segm_result = segm_result[0]
    else:
        bbox_result, segm_result = result, None
    parts = [np.asarray(b, dtype=np.float32).reshape(-1, 5) for b in bbox_result]
    bboxes = np.concatenate(parts) if parts else np.zeros((0, 5), np.float32)
    labels = np.concatenate([np.full(len(b), i, dtype=np.int64) for i, b in enumerate(parts)])
    masks = None
    if segm_result is not None:
        flat = [np.asarray(m, dtype=bool) for per_class in segm_result for m in per_class]
        masks = np.stack(flat) if flat else None
    keep = np.flatnonzero(bboxes[:, 4] > score_thr) if len(bboxes) else np.zeros(0, np.int64)
    keep = keep[np.argsort(-bboxes[keep, 4], kind="stable")]
    if masks is not None:
        masks = masks[keep] if len(masks) == len(bboxes) else None
    return bboxes[keep], labels[keep], masks


def result_to_detections(
    result: Any, class_names: Sequence[str], score_thr: float = 0.0
) -> list[dict[str, Any]]:
    """One image's v2 result as JSON-ready dicts ``{bbox, score, label, class}``.

    Example:
        >>> per_class = [np.zeros((0, 5), np.float32), np.array([[1, 2, 5, 6, 0.9]], np.float32)]
        >>> result_to_detections(per_class, ['cat', 'dog'])
        [{'bbox': [1.0, 2.0, 5.0, 6.0], 'score': 0.8999999761581421, 'label': 1, 'class': 'dog'}]
    """
    bboxes, labels, _ = result_to_arrays(result, score_thr)
    return [
        {
            "bbox": [float(v) for v in box[:4]],
            "score": float(box[4]),
            "label": int(label),
            "class": class_names[label] if label < len(class_names) else f"class {label}",
        }
        for box, label in zip(bboxes, labels, strict=True)
    ]


def draw_result(
    img: np.ndarray, result: Any, class_names: Sequence[str], score_thr: float = 0.0
) -> bytes:
    """PNG bytes of ``img`` (BGR) with the result drawn by the shared drawer."""
    from detforge.visualization import draw_det_bboxes

    bboxes, labels, masks = result_to_arrays(result, score_thr)
    drawn = draw_det_bboxes(img, bboxes, labels, segms=masks, class_names=list(class_names))
    ok, buf = cv2.imencode(".png", drawn)
    if not ok:
        raise RuntimeError(f"could not encode a {drawn.shape} image as PNG")
    return buf.tobytes()
