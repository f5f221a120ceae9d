"""Hard-example review: match saved detections to GT per image and sort out what went wrong.

The habit comes from a helper library of MMDetection users
(``display_hardmini(pkl, score_thr={'*': 0.3}, output_dir, simple=True, clean_thr=0.3,
clean_mode='min', match_mode='iou', pos_iou_thr=0.1, min_pos_iou=1e-3)``). Per image:

1. **Keep** the detections of class ``c`` scoring ``>= score_thr[c]`` (``'*'`` is the default
   for classes not named; 0.3 when nothing is given).
2. **Clean** (only with ``simple=True``): within each class, from the highest score down, a
   detection is dropped when it overlaps an already kept one by ``>= clean_thr``, the overlap
   being intersection / the *smaller* area (``clean_mode='min'``: a box inside another goes)
   or intersection / the *larger* area (``clean_mode='max'``: only near-equal boxes go).
3. **Match** greedily by score (highest first, ties in class then input order): a detection
   takes the not yet taken GT box *of its own class* with the largest overlap (IoU, or IoF =
   intersection / detection area with ``match_mode='iof'``), if that overlap is
   ``>= min_pos_iou``; ties go to the GT listed first.

Each detection and GT box then falls in exactly one category:

- **tp**: a matched pair with overlap ``>= pos_iou_thr``.
- **poor_loc** (poorly localised): a matched pair with ``min_pos_iou <= overlap < pos_iou_thr``
  (the object was found, the box is off). Counted once per pair.
- **fp** (false positive): a kept detection left unmatched. Its kind, for the drawing:
  ``dup`` if a GT of its class (taken by a higher score) overlaps it ``>= pos_iou_thr``, else
  ``cls`` (wrong class) if a GT of another class does, else ``bg`` (background).
- **missed**: a GT box left unmatched.
- An unmatched detection lying at least half inside an ignored GT box (``bboxes_ignore``,
  IoF ``>= 0.5``) is dropped and counted nowhere (as COCO and VOC evaluation ignore it).

So ``tp + poor_loc + missed == n_gt`` and ``tp + poor_loc + fp == n_det`` (``n_det`` counts
the detections kept after steps 1, 2 and the ignore rule). The **badness** of an image is
``fp + missed + 0.5 * poor_loc``: every wrong or missing box costs one, a box that is only off
costs half. Images with ``badness > 0`` are the hard cases.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detforge.analysis.results import bbox_results, flatten_result

__all__ = [
    "ImageMatch",
    "clean_detections",
    "match_dataset",
    "match_image",
    "parse_score_thr",
    "resolve_score_thr",
]

DEFAULT_SCORE_THR = 0.3
_IGNORE_IOF = 0.5


def parse_score_thr(items: Sequence[str] | float | None) -> dict[str, float]:
    """Turn ``--score-thr`` values into a ``{class name or '*': threshold}`` dict.

    A single number is the threshold of every class; otherwise each item is ``NAME=THR``.

    Raises:
        ValueError: an item that is neither a number nor ``NAME=THR`` (the item is named).

    Example:
        >>> parse_score_thr(['0.5']), parse_score_thr(['RBC=0.6', '*=0.2'])
        ({'*': 0.5}, {'RBC': 0.6, '*': 0.2})
    """
    if items is None:
        return {"*": DEFAULT_SCORE_THR}
    if isinstance(items, int | float):
        return {"*": float(items)}
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).rpartition("=")
        if not sep:
            name = "*"
        try:
            out[name.strip() or "*"] = float(value)
        except ValueError:
            raise ValueError(
                f"score threshold {item!r}: expected a number or CLASS=NUMBER"
            ) from None
    return out


def resolve_score_thr(spec: Mapping[str, float] | float, class_names: Sequence[str]) -> np.ndarray:
    """One threshold per class from ``spec`` (``'*'`` = default, else 0.3).

    Raises:
        ValueError: a class name that the dataset does not have (close matches are named).

    Example:
        >>> resolve_score_thr({'WBC': 0.5}, ['RBC', 'WBC']).tolist()
        [0.3, 0.5]
    """
    if isinstance(spec, int | float):
        spec = {"*": float(spec)}
    default = float(spec.get("*", DEFAULT_SCORE_THR))
    thr = np.full(len(class_names), default, dtype=np.float64)
    for name, value in spec.items():
        if name == "*":
            continue
        if name not in class_names:
            close = difflib.get_close_matches(name, list(class_names), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"score threshold for unknown class {name!r} (classes: {list(class_names)}){hint}"
            )
        thr[list(class_names).index(name)] = float(value)
    return thr


def _pair_overlap(a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """``[N, K]`` intersection / min or max area of the two boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    pick = np.minimum if mode == "min" else np.maximum
    return inter / np.maximum(pick(area_a[:, None], area_b[None, :]), 1e-6)


def clean_detections(
    bboxes: np.ndarray, labels: np.ndarray, clean_thr: float = 0.3, clean_mode: str = "min"
) -> np.ndarray:
    """Indices of the detections kept by the per-class cleaning of step 2 (score order).

    Example:
        >>> dets = np.array([[0, 0, 10, 10, .9], [2, 2, 6, 6, .8], [20, 20, 30, 30, .7]])
        >>> clean_detections(dets, np.array([0, 0, 0])).tolist()
        [0, 2]
    """
    if clean_mode not in ("min", "max"):
        raise ValueError(f"clean_mode must be 'min' or 'max', got {clean_mode!r}")
    order = np.argsort(-bboxes[:, 4], kind="stable")
    kept: list[int] = []
    for i in order:
        same = [k for k in kept if labels[k] == labels[i]]
        if same and _pair_overlap(bboxes[i : i + 1], bboxes[same], clean_mode).max() >= clean_thr:
            continue
        kept.append(int(i))
    return np.array(kept, dtype=np.int64)


@dataclass
class ImageMatch:
    """The categories of one image (see the module docstring); boxes in the image frame.

    ``*_dets`` are ``[n, 5]`` (with score) and ``*_gt`` ``[n, 4]``; ``poor_gt[i]`` is the GT
    box of ``poor_dets[i]`` and ``poor_overlaps[i]`` their overlap; ``fp_kinds[i]`` is
    ``'dup'``, ``'cls'`` or ``'bg'``.
    """

    n_gt: int
    tp_dets: np.ndarray
    tp_labels: np.ndarray
    poor_dets: np.ndarray
    poor_labels: np.ndarray
    poor_gt: np.ndarray
    poor_overlaps: np.ndarray
    fp_dets: np.ndarray
    fp_labels: np.ndarray
    missed_gt: np.ndarray
    missed_labels: np.ndarray
    fp_kinds: list[str] = field(default_factory=list)

    @property
    def tp(self) -> int:
        return len(self.tp_dets)

    @property
    def fp(self) -> int:
        return len(self.fp_dets)

    @property
    def missed(self) -> int:
        return len(self.missed_gt)

    @property
    def poor_loc(self) -> int:
        return len(self.poor_dets)

    @property
    def n_det(self) -> int:
        return self.tp + self.fp + self.poor_loc

    @property
    def badness(self) -> float:
        """``fp + missed + 0.5 * poor_loc``."""
        return self.fp + self.missed + 0.5 * self.poor_loc


def match_image(
    gt_bboxes: np.ndarray,
    gt_labels: np.ndarray,
    result: Sequence[np.ndarray],
    score_thr: np.ndarray | float = DEFAULT_SCORE_THR,
    match_mode: str = "iou",
    pos_iou_thr: float = 0.1,
    min_pos_iou: float = 1e-3,
    simple: bool = False,
    clean_thr: float = 0.3,
    clean_mode: str = "min",
    gt_bboxes_ignore: np.ndarray | None = None,
) -> ImageMatch:
    """Sort one image's detections and GT into tp / poor_loc / fp / missed.

    Args:
        gt_bboxes: ``ndarray[G, 4]`` GT boxes.
        gt_labels: ``ndarray[G]`` their classes.
        result: The v2 result of the image: a list over classes of ``ndarray[n, 5]``.
        score_thr: One threshold per class (``ndarray[C]``) or one for all.
        match_mode: ``'iou'`` or ``'iof'`` (intersection over the detection's area).
        pos_iou_thr: Overlap from which a matched pair is a true positive.
        min_pos_iou: Overlap from which a detection and a GT of its class match at all.
        simple: Clean overlapping same-class detections first (``clean_thr``, ``clean_mode``).
        clean_thr: Overlap from which cleaning drops the lower-scored detection.
        clean_mode: ``'min'`` or ``'max'``: the area the intersection is divided by.
        gt_bboxes_ignore: ``ndarray[I, 4]`` ignored GT regions, or None.

    Example:
        >>> gt, labels = np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), np.array([0, 0])
        >>> m = match_image(gt, labels, [np.array([[0, 0, 10, 10, .9], [80, 80, 90, 90, .8]])])
        >>> m.tp, m.fp, m.missed, m.poor_loc, m.badness
        (1, 1, 1, 0, 2.0)
    """
    from detforge.evaluation.overlaps import bbox_overlaps_np

    if match_mode not in ("iou", "iof"):
        raise ValueError(f"match_mode must be 'iou' or 'iof', got {match_mode!r}")
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    if len(gt_bboxes) != len(gt_labels):
        raise ValueError(f"{len(gt_bboxes)} GT boxes but {len(gt_labels)} GT labels")
    bboxes, labels, _ = flatten_result(result)
    thr = np.broadcast_to(np.asarray(score_thr, dtype=np.float64), (max(len(result), 1),))
    keep = np.flatnonzero(bboxes[:, 4] >= thr[labels]) if len(labels) else np.zeros(0, np.int64)
    bboxes, labels = bboxes[keep], labels[keep]
    if simple and len(bboxes):
        keep = clean_detections(bboxes, labels, clean_thr, clean_mode)
        bboxes, labels = bboxes[keep], labels[keep]
    order = np.argsort(-bboxes[:, 4], kind="stable")
    bboxes, labels = bboxes[order], labels[order]

    overlaps = bbox_overlaps_np(bboxes[:, :4], gt_bboxes, mode=match_mode)
    taken = np.zeros(len(gt_bboxes), dtype=bool)
    det_gt = np.full(len(bboxes), -1, dtype=np.int64)
    for i in range(len(bboxes)):
        candidates = np.where((gt_labels == labels[i]) & ~taken, overlaps[i], -1.0)
        if len(candidates) and candidates.max() >= min_pos_iou:
            det_gt[i] = int(np.argmax(candidates))
            taken[det_gt[i]] = True

    unmatched = np.flatnonzero(det_gt < 0)
    if gt_bboxes_ignore is not None and len(gt_bboxes_ignore) and len(unmatched):
        ignored = np.asarray(gt_bboxes_ignore, dtype=np.float32).reshape(-1, 4)
        inside = bbox_overlaps_np(bboxes[unmatched, :4], ignored, mode="iof").max(axis=1)
        drop = unmatched[inside >= _IGNORE_IOF]
        alive = np.setdiff1d(np.arange(len(bboxes)), drop)
        bboxes, labels, det_gt = bboxes[alive], labels[alive], det_gt[alive]
        overlaps = overlaps[alive]
        unmatched = np.flatnonzero(det_gt < 0)

    matched = np.flatnonzero(det_gt >= 0)
    pair_overlap = overlaps[matched, det_gt[matched]] if len(matched) else np.zeros(0)
    good, poor = matched[pair_overlap >= pos_iou_thr], matched[pair_overlap < pos_iou_thr]
    kinds = []
    for d in unmatched.tolist():
        same = gt_labels == labels[d]
        if (overlaps[d, same] >= pos_iou_thr).any():
            kinds.append("dup")
        elif (overlaps[d, ~same] >= pos_iou_thr).any():
            kinds.append("cls")
        else:
            kinds.append("bg")
    missed = np.flatnonzero(~taken)
    return ImageMatch(
        n_gt=len(gt_bboxes),
        tp_dets=bboxes[good],
        tp_labels=labels[good],
        poor_dets=bboxes[poor],
        poor_labels=labels[poor],
        poor_gt=gt_bboxes[det_gt[poor]],
        poor_overlaps=overlaps[poor, det_gt[poor]] if len(poor) else np.zeros(0, np.float32),
        fp_dets=bboxes[unmatched],
        fp_labels=labels[unmatched],
        fp_kinds=kinds,
        missed_gt=gt_bboxes[missed],
        missed_labels=gt_labels[missed],
    )


def match_dataset(
    annotations: Sequence[Mapping[str, Any]],
    results: Sequence[Any],
    num_classes: int,
    **kwargs: Any,
) -> list[ImageMatch]:
    """:func:`match_image` on every ``(annotation, result)`` pair.

    Args:
        annotations: Per image ``dataset.get_ann_info(i)`` (``bboxes``, ``labels``,
            optionally ``bboxes_ignore``).
        results: Per image a v2 result (masks of ``(bbox, segm)`` results are ignored).
        num_classes: Classes of the dataset; every result must have as many.
        **kwargs: The keyword arguments of :func:`match_image`.

    Raises:
        ValueError: lengths differ, or a result has another number of classes (both named).
    """
    from tqdm import tqdm

    if len(annotations) != len(results):
        raise ValueError(f"{len(results)} results for {len(annotations)} images")
    boxes = bbox_results(results)
    matches = []
    for idx in tqdm(range(len(results)), desc="hard examples", unit="img", dynamic_ncols=True):
        ann, bbox_res = annotations[idx], boxes[idx]
        if len(bbox_res) != num_classes:
            raise ValueError(
                f"result {idx} has {len(bbox_res)} classes but the dataset has {num_classes}"
            )
        ignore = ann.get("bboxes_ignore")
        matches.append(
            match_image(ann["bboxes"], ann["labels"], bbox_res, gt_bboxes_ignore=ignore, **kwargs)
        )
    return matches
