"""Per-image true / false positive rules of the VOC-style mAP, with MMDetection v2's numbers.

Each ``tpfp_*`` function takes the detections (``ndarray[m, 5]``, the last column the score)
and the ground truths of one image and one class, and returns ``ndarray[num_scales, m]`` 0 / 1
flags; :func:`~detforge.evaluation.mean_ap.eval_map` gathers them over images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detforge.evaluation.overlaps import bbox_overlaps_np

__all__ = ["AreaRanges", "tpfp_default", "tpfp_imagenet", "tpfp_openimages"]

AreaRanges = Sequence[tuple[float, float]] | None


def _boxes(arr: np.ndarray | None, name: str) -> np.ndarray:
    if arr is None:
        return np.zeros((0, 4), dtype=np.float32)
    out = np.asarray(arr)
    if out.size == 0:
        return out.reshape(0, out.shape[-1] if out.ndim == 2 else 4)
    if out.ndim != 2 or out.shape[1] < 4:
        raise ValueError(f"{name} must have shape [N, 4] (or [N, 5] with scores), got {out.shape}")
    return out


def _areas(boxes: np.ndarray, extra: float) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0] + extra) * (boxes[:, 3] - boxes[:, 1] + extra)


def _stack_gts(gt_bboxes: np.ndarray, gt_bboxes_ignore: np.ndarray | None) -> tuple[Any, Any]:
    """All ground truths (kept ones first, then ignored ones) and the ignore flag of each."""
    gts = _boxes(gt_bboxes, "gt_bboxes")
    ignored = _boxes(gt_bboxes_ignore, "gt_bboxes_ignore")
    is_ignored = np.concatenate(
        (np.zeros(gts.shape[0], dtype=bool), np.ones(ignored.shape[0], dtype=bool))
    )
    return np.vstack((gts[:, :4], ignored[:, :4])), is_ignored


def _fp_by_area(fp: np.ndarray, dets: np.ndarray, ranges: list[Any], extra: float) -> None:
    """Mark every detection inside the area range of a scale as false positive."""
    if ranges == [(None, None)]:
        fp[...] = 1
        return
    det_areas = _areas(dets, extra)
    for k, (min_area, max_area) in enumerate(ranges):
        fp[k, (det_areas >= min_area) & (det_areas < max_area)] = 1


def _area_ignored(gt_areas: np.ndarray, min_area: float | None, max_area: float | None) -> Any:
    if min_area is None:
        return np.zeros(gt_areas.shape[0], dtype=bool)
    return (gt_areas < min_area) | (gt_areas >= max_area)


def _det_in_range(det: np.ndarray, min_area: float, max_area: float, extra: float) -> bool:
    area = (det[2] - det[0] + extra) * (det[3] - det[1] + extra)
    return bool(min_area <= area < max_area)


def _greedy_max_iou(
    dets: np.ndarray,
    ious: np.ndarray,
    is_ignored: np.ndarray,
    gt_areas: np.ndarray,
    iou_thr: float,
    ranges: list[Any],
    extra: float,
    tp: np.ndarray,
    fp: np.ndarray,
) -> None:
    """VOC matching: each detection, best score first, looks only at its highest-IoU gt."""
    ious_max = ious.max(axis=1)
    ious_argmax = ious.argmax(axis=1)
    order = np.argsort(-dets[:, -1])
    for k, (min_area, max_area) in enumerate(ranges):
        covered = np.zeros(ious.shape[1], dtype=bool)
        area_ignored = _area_ignored(gt_areas, min_area, max_area)
        for i in order:
            if ious_max[i] >= iou_thr:
                j = ious_argmax[i]
                if is_ignored[j] or area_ignored[j]:
                    continue  # matched an ignored box: neither TP nor FP
                if covered[j]:
                    fp[k, i] = 1
                else:
                    covered[j] = True
                    tp[k, i] = 1
            elif min_area is None or _det_in_range(dets[i], min_area, max_area, extra):
                fp[k, i] = 1


def tpfp_default(
    det_bboxes: np.ndarray,
    gt_bboxes: np.ndarray,
    gt_bboxes_ignore: np.ndarray | None = None,
    iou_thr: float = 0.5,
    area_ranges: AreaRanges = None,
    use_legacy_coordinate: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """True / false positives of one image and one class (Pascal VOC rule).

    Detections are visited by descending score (the last column); a detection whose best IoU
    reaches ``iou_thr`` is a TP if that gt is still free, a FP if it was taken, and neither if
    that gt is ignored (or outside the area range). Unmatched detections are FPs when their own
    area is inside the range.

    Args:
        det_bboxes: ``ndarray[m, 5]`` detections (the last column is the score).
        gt_bboxes: ``ndarray[n, 4]`` ground truths.
        gt_bboxes_ignore: ``ndarray[k, 4]`` ignored ground truths, or None.
        iou_thr: IoU needed for a match.
        area_ranges: ``[(min_area, max_area), ...]`` to evaluate separately, or None for all.
        use_legacy_coordinate: Widths are ``x2 - x1 + 1`` (VOC devkit convention).

    Returns:
        ``(tp, fp)``, each ``ndarray[num_scales, m]`` float32 of 0 / 1.

    Example:
        >>> tp, fp = tpfp_default(np.array([[0, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.8]]),
        ...                       np.array([[0, 0, 10, 10]]))
        >>> tp.tolist(), fp.tolist()
        ([[1.0, 0.0]], [[0.0, 1.0]])
    """
    extra = 1.0 if use_legacy_coordinate else 0.0
    dets = _boxes(det_bboxes, "det_bboxes")
    gts, is_ignored = _stack_gts(gt_bboxes, gt_bboxes_ignore)
    ranges: list[Any] = list(area_ranges) if area_ranges is not None else [(None, None)]
    tp = np.zeros((len(ranges), dets.shape[0]), dtype=np.float32)
    fp = np.zeros((len(ranges), dets.shape[0]), dtype=np.float32)
    if gts.shape[0] == 0:
        _fp_by_area(fp, dets, ranges, extra)
        return tp, fp
    ious = bbox_overlaps_np(dets, gts, use_legacy_coordinate=use_legacy_coordinate)
    _greedy_max_iou(dets, ious, is_ignored, _areas(gts, extra), iou_thr, ranges, extra, tp, fp)
    return tp, fp


def tpfp_imagenet(
    det_bboxes: np.ndarray,
    gt_bboxes: np.ndarray,
    gt_bboxes_ignore: np.ndarray | None = None,
    default_iou_thr: float = 0.5,
    area_ranges: AreaRanges = None,
    use_legacy_coordinate: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """True / false positives of one image and one class (ImageNet DET/VID rule).

    Unlike :func:`tpfp_default`, a detection may fall back to its best *free* gt, and the IoU
    threshold of a gt of size ``w x h`` is ``min(default_iou_thr, wh / ((w + 10)(h + 10)))``.
    Like v2, the IoU is taken against the gt boxes shifted by -1 pixel.

    Args:
        det_bboxes: ``ndarray[m, 5]`` detections (the last column is the score).
        gt_bboxes: ``ndarray[n, 4]`` ground truths.
        gt_bboxes_ignore: ``ndarray[k, 4]`` ignored ground truths, or None.
        default_iou_thr: IoU threshold for medium and large objects.
        area_ranges: ``[(min_area, max_area), ...]`` to evaluate separately, or None for all.
        use_legacy_coordinate: Widths are ``x2 - x1 + 1``.

    Returns:
        ``(tp, fp)``, each ``ndarray[num_scales, m]`` float32 of 0 / 1.

    Example:
        >>> tp, fp = tpfp_imagenet(np.array([[0, 0, 10, 10, 0.9]]), np.array([[0, 0, 10, 10]]))
        >>> tp.tolist(), fp.tolist()
        ([[1.0]], [[0.0]])
    """
    extra = 1.0 if use_legacy_coordinate else 0.0
    dets = _boxes(det_bboxes, "det_bboxes")
    gts, is_ignored = _stack_gts(gt_bboxes, gt_bboxes_ignore)
    ranges: list[Any] = list(area_ranges) if area_ranges is not None else [(None, None)]
    tp = np.zeros((len(ranges), dets.shape[0]), dtype=np.float32)
    fp = np.zeros((len(ranges), dets.shape[0]), dtype=np.float32)
    if gts.shape[0] == 0:
        _fp_by_area(fp, dets, ranges, extra)
        return tp, fp
    ious = bbox_overlaps_np(dets, gts - 1, use_legacy_coordinate=use_legacy_coordinate)
    gt_w = gts[:, 2] - gts[:, 0] + extra
    gt_h = gts[:, 3] - gts[:, 1] + extra
    iou_thrs = np.minimum((gt_w * gt_h) / ((gt_w + 10.0) * (gt_h + 10.0)), default_iou_thr)
    order = np.argsort(-dets[:, -1])
    for k, (min_area, max_area) in enumerate(ranges):
        covered = np.zeros(gts.shape[0], dtype=bool)
        area_ignored = _area_ignored(gt_w * gt_h, min_area, max_area)
        for i in order:
            candidates = ~covered & (ious[i] >= iou_thrs)
            if candidates.any():
                # the first gt with the highest IoU among the free ones above their threshold
                j = int(np.where(candidates, ious[i], -np.inf).argmax())
                covered[j] = True
                if not (is_ignored[j] or area_ignored[j]):
                    tp[k, i] = 1
            elif min_area is None or _det_in_range(dets[i], min_area, max_area, extra):
                fp[k, i] = 1
    return tp, fp


def tpfp_openimages(
    det_bboxes: np.ndarray,
    gt_bboxes: np.ndarray,
    gt_bboxes_ignore: np.ndarray | None = None,
    iou_thr: float = 0.5,
    area_ranges: AreaRanges = None,
    use_legacy_coordinate: bool = False,
    gt_bboxes_group_of: np.ndarray | None = None,
    use_group_of: bool = True,
    ioa_thr: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True / false positives with Open Images "group-of" boxes.

    Detections are first matched to the ordinary gts as in :func:`tpfp_default`. The ones left
    unmatched whose intersection-over-own-area with a group-of gt reaches ``ioa_thr`` are then
    merged: each group-of gt becomes a single detection carrying the best score of the
    detections inside it (a TP), and group-of gts nobody hit become a zero-score FP (as v2).

    Args:
        det_bboxes: ``ndarray[m, 5]`` detections (the last column is the score).
        gt_bboxes: ``ndarray[n, 4]`` ground truths.
        gt_bboxes_ignore: ``ndarray[k, 4]`` ignored ground truths, or None.
        iou_thr: IoU needed for a match with an ordinary gt.
        area_ranges: ``[(min_area, max_area), ...]`` to evaluate separately, or None for all.
        use_legacy_coordinate: Widths are ``x2 - x1 + 1`` (only for the ordinary matching when
            group-of boxes are not used, as v2).
        gt_bboxes_group_of: ``ndarray[n]`` (or ``[n + k]``) bool flags of the group-of gts.
        use_group_of: Use the group-of flags at all.
        ioa_thr: Intersection over detection area needed to fall into a group-of gt.

    Returns:
        ``(tp, fp, det_bboxes)``: ``ndarray[num_scales, m']`` each, and the ``ndarray[m', 5]``
        detections they refer to (unmerged ones, then one per group-of gt).

    Example:
        >>> dets = np.array([[10, 10, 15, 15, 1.0], [30, 30, 51, 51, 0.9]])
        >>> gts = np.array([[10.0, 10, 30, 30], [30, 30, 50, 50]])
        >>> tp, fp, out = tpfp_openimages(dets, gts, gt_bboxes_group_of=np.array([True, False]))
        >>> tp.tolist(), fp.tolist(), out[:, -1].tolist()
        ([[1.0, 1.0]], [[0.0, 0.0]], [0.9, 1.0])
    """
    extra = 1.0 if use_legacy_coordinate else 0.0
    dets = _boxes(det_bboxes, "det_bboxes")
    gts, is_ignored = _stack_gts(gt_bboxes, gt_bboxes_ignore)
    ranges: list[Any] = list(area_ranges) if area_ranges is not None else [(None, None)]
    num_scales, num_dets = len(ranges), dets.shape[0]
    tp = np.zeros((num_scales, num_dets), dtype=np.float32)
    fp = np.zeros((num_scales, num_dets), dtype=np.float32)
    if gts.shape[0] == 0:
        _fp_by_area(fp, dets, ranges, extra)
        return tp, fp, dets

    if gt_bboxes_group_of is not None and use_group_of:
        group_of = np.asarray(gt_bboxes_group_of, dtype=bool).reshape(-1)
        if group_of.shape[0] == gts.shape[0] - int(is_ignored.sum()):
            group_of = np.concatenate((group_of, np.zeros(int(is_ignored.sum()), dtype=bool)))
        if group_of.shape[0] != gts.shape[0]:
            raise ValueError(
                f"gt_bboxes_group_of has {group_of.shape[0]} flags for {gts.shape[0]} gt boxes"
            )
        plain = np.flatnonzero(~group_of)
        group = np.flatnonzero(group_of)
        ious = bbox_overlaps_np(dets, gts[plain])
        ioas: np.ndarray | None = bbox_overlaps_np(dets, gts[group], mode="iof")
    else:
        plain = np.arange(gts.shape[0])
        group = np.zeros(0, dtype=np.int64)
        ious = bbox_overlaps_np(dets, gts, use_legacy_coordinate=use_legacy_coordinate)
        ioas = None

    if ious.shape[1] > 0:
        gt_areas = _areas(gts[plain], extra)
        _greedy_max_iou(dets, ious, is_ignored[plain], gt_areas, iou_thr, ranges, extra, tp, fp)
    else:
        _fp_by_area(fp, dets, ranges, extra)
    if ioas is None or ioas.shape[1] == 0:
        return tp, fp, dets

    num_groups = group.shape[0]
    group_dets = np.zeros((num_scales, num_groups, dets.shape[1]), dtype=float)
    merged = np.zeros((num_scales, num_dets), dtype=bool)
    tp_group = np.zeros((num_scales, num_groups), dtype=np.float32)
    ioas_max = ioas.max(axis=1)
    ioas_argmax = ioas.argmax(axis=1)
    group_areas = _areas(gts[group], 0.0)  # v2 ignores the legacy +1 here
    for k, (min_area, max_area) in enumerate(ranges):
        area_ignored = _area_ignored(group_areas, min_area, max_area)
        for i in np.argsort(-dets[:, -1]):
            j = ioas_argmax[i]
            if tp[k, i] or ioas_max[i] < ioa_thr:
                continue
            if is_ignored[group[j]] or area_ignored[j]:
                continue
            tp_group[k, j] = 1
            merged[k, i] = True
            if group_dets[k, j, -1] < dets[i, -1]:
                group_dets[k, j] = dets[i]
    fp_group = (tp_group <= 0).astype(float)
    out_dets = [np.concatenate((dets[~merged[k]], group_dets[k])) for k in range(num_scales)]
    if any(not np.array_equal(out_dets[0], d) for d in out_dets[1:]):
        raise ValueError(
            "group-of merging differs between area ranges; evaluate one area range at a time"
        )
    tp = np.vstack([np.concatenate((tp[k][~merged[k]], tp_group[k])) for k in range(num_scales)])
    fp = np.vstack([np.concatenate((fp[k][~merged[k]], fp_group[k])) for k in range(num_scales)])
    return tp, fp, out_dets[0]
