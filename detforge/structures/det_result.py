"""``DetResult``: a typed view of one image's detections that converts to and from the v2 format.

The v2 per-image result is what ``results.pkl``, ``show_result`` and ``dataset.evaluate`` use:
a list over classes of ``ndarray[n, 5]`` (``x1, y1, x2, y2, score``), or for instance
segmentation a tuple ``(bbox_results, segm_results)`` where ``segm_results[c]`` lists one
mask (``ndarray[H, W]`` bool, or a pycocotools RLE dict) per box of class ``c``.

:meth:`DetResult.from_v2` is the one reader that turns such a result into flat arrays, and
:func:`split_v2_result` the one place that tells its box part from its mask part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.structures.masks import rle_decode, split_mask_scores

__all__ = ["DetResult", "json_float", "result_to_detections", "split_v2_result"]

V2BoxResult = list[np.ndarray]
V2Result = V2BoxResult | tuple[V2BoxResult, list[list[Any]]]


def split_v2_result(result: V2Result | Sequence[Any]) -> tuple[Sequence[Any], Any]:
    """``(bbox_results, segm_results)`` of one image's v2 result; ``segm_results`` is None
    for a box-only result.

    ``segm_results`` is returned as given: per-class mask lists, or the mask-scoring form
    ``(segm_results, mask_scores)``. Nothing is copied or decoded.

    Raises:
        TypeError: ``result`` is a tuple of other than two items.

    Example:
        >>> boxes = [np.zeros((0, 5), np.float32)]
        >>> split_v2_result(boxes)[1], split_v2_result((boxes, [[]]))[1]
        (None, [[]])
    """
    if not isinstance(result, tuple):
        return result, None
    if len(result) != 2:
        raise TypeError(
            f"a tuple v2 result must be (bbox_results, segm_results), got {len(result)} items"
        )
    return result[0], result[1]


@dataclasses.dataclass(eq=False)
class DetResult:
    """Detections of one image as flat arrays.

    Attributes:
        boxes: ``ndarray[N, 4]`` float32, ``x1, y1, x2, y2`` in pixels.
        scores: ``ndarray[N]`` float32.
        labels: ``ndarray[N]`` int64 in ``[0, num_classes)``.
        masks: ``ndarray[N, H, W]`` bool, or None for box-only detectors.

    The constructor casts to those dtypes and checks that the lengths agree.

    Example:
        >>> v2 = [np.array([[0, 0, 4, 4, .9]], np.float32), np.zeros((0, 5), np.float32)]
        >>> r = DetResult.from_v2(v2)
        >>> len(r), r.labels.tolist(), [a.shape for a in r.to_v2(num_classes=2)]
        (1, [0], [(1, 5), (0, 5)])
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.labels) != n:
            raise ValueError(
                f"DetResult: {n} boxes but {len(self.scores)} scores and {len(self.labels)} labels"
            )
        if self.masks is not None:
            self.masks = np.asarray(self.masks).astype(bool, copy=False)
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise ValueError(
                    f"DetResult: masks must be ndarray[{n}, H, W], got shape {self.masks.shape}"
                )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> DetResult:
        """Select detections by int, slice, index array or boolean array."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        return DetResult(
            boxes=self.boxes[idx],
            scores=self.scores[idx],
            labels=self.labels[idx],
            masks=None if self.masks is None else self.masks[idx],
        )

    @property
    def det_bboxes(self) -> np.ndarray:
        """``ndarray[N, 5]`` float32 rows ``x1, y1, x2, y2, score`` (v2's ``det_bboxes``)."""
        return np.concatenate([self.boxes, self.scores[:, None]], axis=1).astype(np.float32)

    def above(self, score_thr: float) -> DetResult:
        """Detections with ``score > score_thr`` (strict, like v2's ``show_result``)."""
        return self[self.scores > score_thr]

    def sorted(self) -> DetResult:
        """Detections by descending score (ties keep their order)."""
        return self[np.argsort(-self.scores, kind="stable")]

    @classmethod
    def from_v2(cls, result: V2Result | Sequence[Any]) -> DetResult:
        """Build from a v2 per-image result (boxes only, or ``(bbox_results, segm_results)``).

        Detections come out class by class, in the order of the v2 lists, so
        ``DetResult.from_v2(r).to_v2(len(r))`` gives ``r`` back. RLE masks are decoded; the
        mask-scoring form ``(bbox_results, (segm_results, mask_scores))`` is accepted and the
        mask scores dropped; torch tensor masks (CPU or CUDA) are converted to arrays.

        Raises:
            TypeError: ``result`` has none of the v2 shapes.
            ValueError: a class's mask count differs from its box count.
        """
        bbox_results, segm = split_v2_result(result)
        if segm is not None:
            segm = split_mask_scores(segm)[0]
        if not isinstance(bbox_results, list | tuple) or not all(
            isinstance(a, np.ndarray) for a in bbox_results
        ):
            raise TypeError(
                "DetResult.from_v2: expected a list over classes of ndarray[n, 5], got "
                f"{type(bbox_results).__name__}"
            )
        for c, arr in enumerate(bbox_results):
            if arr.ndim != 2 or arr.shape[1] != 5:
                raise ValueError(
                    f"DetResult.from_v2: class {c} boxes must be ndarray[n, 5], got {arr.shape}"
                )
        counts = [len(a) for a in bbox_results]
        dets = (
            np.concatenate(bbox_results, axis=0).astype(np.float32)
            if bbox_results
            else np.zeros((0, 5), np.float32)
        )
        labels = np.repeat(np.arange(len(bbox_results), dtype=np.int64), counts)
        masks = None if segm is None else _collect_masks(segm, counts)
        return cls(boxes=dets[:, :4], scores=dets[:, 4], labels=labels, masks=masks)

    def to_v2(self, num_classes: int) -> V2Result:
        """The v2 per-image result: per-class ``ndarray[n, 5]`` float32 (and mask lists).

        Raises:
            ValueError: a label is outside ``[0, num_classes)``.
        """
        if len(self) and (self.labels.min() < 0 or self.labels.max() >= num_classes):
            raise ValueError(
                f"DetResult.to_v2: labels must be in [0, {num_classes}), got "
                f"{sorted(set(self.labels.tolist()))}"
            )
        dets = self.det_bboxes
        per_class = [self.labels == c for c in range(num_classes)]
        bbox_results = [dets[sel] for sel in per_class]
        if self.masks is None:
            return bbox_results
        masks = self.masks
        segm_results = [list(masks[sel]) for sel in per_class]
        return bbox_results, segm_results


def _collect_masks(segm: Sequence[Sequence[Any]], counts: list[int]) -> np.ndarray:
    if len(segm) != len(counts):
        raise ValueError(
            f"DetResult.from_v2: {len(counts)} classes of boxes but {len(segm)} of masks"
        )
    decoded: list[np.ndarray] = []
    for c, (per_cls, n) in enumerate(zip(segm, counts, strict=True)):
        if len(per_cls) != n:
            raise ValueError(f"DetResult.from_v2: class {c} has {n} boxes but {len(per_cls)} masks")
        for m in per_cls:
            if isinstance(m, Mapping):
                m = rle_decode(m)
            elif hasattr(m, "detach"):  # a torch.Tensor, possibly on a GPU
                m = m.detach().cpu().numpy()
            decoded.append(np.asarray(m))
    if not decoded:
        return np.zeros((0, 0, 0), dtype=bool)
    shapes = {m.shape for m in decoded}
    if len(shapes) != 1:
        raise ValueError(f"DetResult.from_v2: masks have different shapes {sorted(shapes)}")
    return np.stack(decoded).astype(bool)


def json_float(value: Any) -> float:
    """The shortest decimal that is the same float32: what a float32 holds, for JSON output.

    ``float(np.float32(0.9))`` is ``0.8999999761581421``; this is ``0.9``. Nothing the model
    computed is lost (``np.float32(json_float(v)) == np.float32(v)``), however small.

    Example:
        >>> json_float(np.float32(0.9)), json_float(np.float32(0.010068834)), json_float(12)
        (0.9, 0.010068834, 12.0)
    """
    return float(np.format_float_positional(np.float32(value), unique=True))


def result_to_detections(
    result: V2Result | Sequence[Any],
    class_names: Sequence[str],
    score_thr: float = 0.0,
    *,
    strict: bool = True,
    by_score: bool = True,
) -> list[dict[str, Any]]:
    """One image's v2 result as JSON-ready ``[{"bbox", "score", "label", "class"}]``.

    This is the one conversion behind ``detforge infer``'s ``results.jsonl``, ``detforge
    serve``'s answers and the TorchServe handler. ``bbox`` (``x1, y1, x2, y2`` pixels) and
    ``score`` go through :func:`json_float` (the model's float32 values, without float64
    noise); masks are not included.

    Args:
        result: A v2 per-image result (boxes, or ``(bbox_results, segm_results)``).
        class_names: Names by label; a label beyond them is named ``class <label>``.
        score_thr: Keep detections scoring above this (``>=`` when ``strict`` is False).
        strict: ``score > score_thr`` (v2's ``show_result``) or ``>=`` (v2's TorchServe
            handler).
        by_score: Best score first (ties keep class order); else in class order, as v2's
            per-class lists.

    Example:
        >>> r = [np.zeros((0, 5), np.float32), np.array([[1, 2, 5, 6, 0.9]], np.float32)]
        >>> result_to_detections(r, ['cat', 'dog'])
        [{'bbox': [1.0, 2.0, 5.0, 6.0], 'score': 0.9, 'label': 1, 'class': 'dog'}]
    """
    bbox_result, _ = split_v2_result(result)  # masks: not decoded
    dets = DetResult.from_v2(list(bbox_result))
    keep = dets.scores > score_thr if strict else dets.scores >= score_thr
    dets = dets[keep]
    if by_score:
        dets = dets.sorted()
    return [
        {
            "bbox": [json_float(v) for v in box],
            "score": json_float(score),
            "label": int(label),
            "class": class_names[label] if label < len(class_names) else f"class {label}",
        }
        for box, score, label in zip(dets.boxes, dets.scores, dets.labels, strict=True)
    ]
