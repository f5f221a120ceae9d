"""Pascal-VOC style mean average precision with MMDetection v2's exact numbers.

``eval_map`` takes per-image detections (``det_results[img][cls]`` = ``ndarray[n, 5]`` rows
``x1, y1, x2, y2, score``) and per-image annotations (dicts with ``bboxes``, ``labels`` and
optionally ``bboxes_ignore`` / ``labels_ignore``, plus ``gt_is_group_ofs`` for Open Images),
decides which detections are true / false positives with one of the ``tpfp_*`` functions (in
:mod:`detforge.evaluation.tpfp`, re-exported here), and integrates the precision-recall curve
with :func:`average_precision`.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing import Pool
from typing import Any

import numpy as np
from tqdm import tqdm

from detforge.evaluation.class_names import VOC_CLASSES
from detforge.evaluation.table import LoggerLike, format_table, print_log
from detforge.evaluation.tpfp import (
    _areas,
    _boxes,
    tpfp_default,
    tpfp_imagenet,
    tpfp_openimages,
)

__all__ = [
    "average_precision",
    "eval_map",
    "get_cls_group_ofs",
    "get_cls_results",
    "print_map_summary",
    "tpfp_default",
    "tpfp_imagenet",
    "tpfp_openimages",
]

_VOC_ALIASES = ("voc", "pascal_voc", "voc07", "voc12")

#: Below this many images ``eval_map`` works in-process: a pool costs more than it saves.
_POOL_MIN_IMAGES = 256


# --------------------------------------------------------------------------- AP from a PR curve


def average_precision(
    recalls: np.ndarray, precisions: np.ndarray, mode: str = "area"
) -> np.ndarray | np.floating[Any]:
    """Average precision of one or several precision-recall curves.

    Args:
        recalls: ``ndarray[num_dets]`` or ``ndarray[num_scales, num_dets]`` recall after each
            detection (sorted by score).
        precisions: Precision after each detection, same shape as ``recalls``.
        mode: ``'area'`` (area under the monotone precision envelope, VOC2010+) or
            ``'11points'`` (mean of the best precision at recall >= 0, 0.1, ..., 1, VOC2007).

    Returns:
        A float32 scalar for 1-d input, else ``ndarray[num_scales]`` float32.

    Example:
        >>> r, p = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
        >>> round(float(average_precision(r, p)), 4)
        0.8333
        >>> round(float(average_precision(r, p, '11points')), 4)
        0.8485
    """
    recalls = np.asarray(recalls)
    precisions = np.asarray(precisions)
    if recalls.shape != precisions.shape or recalls.ndim not in (1, 2):
        raise ValueError(
            "recalls and precisions must have the same 1-d or 2-d shape, got "
            f"{recalls.shape} and {precisions.shape}"
        )
    single = recalls.ndim == 1
    if single:
        recalls, precisions = recalls[None], precisions[None]
    num_scales = recalls.shape[0]
    ap = np.zeros(num_scales, dtype=np.float32)
    if mode == "area":
        zeros = np.zeros((num_scales, 1), dtype=recalls.dtype)
        ones = np.ones((num_scales, 1), dtype=recalls.dtype)
        mrec = np.hstack((zeros, recalls, ones))
        mpre = np.hstack((zeros, precisions, zeros))
        # precision envelope: best precision at this recall or any higher one
        mpre = np.maximum.accumulate(mpre[:, ::-1], axis=1)[:, ::-1]
        for i in range(num_scales):
            steps = np.where(mrec[i, 1:] != mrec[i, :-1])[0]
            ap[i] = np.sum((mrec[i, steps + 1] - mrec[i, steps]) * mpre[i, steps + 1])
    elif mode == "11points":
        for i in range(num_scales):
            for thr in np.arange(0, 1 + 1e-3, 0.1):
                reached = precisions[i, recalls[i, :] >= thr]
                ap[i] += reached.max() if reached.size > 0 else 0
        ap /= 11
    else:
        raise ValueError(f"mode must be 'area' or '11points', got {mode!r}")
    return ap[0] if single else ap


# --------------------------------------------------------------------------- per-class gathering


def get_cls_results(
    det_results: Sequence[Sequence[np.ndarray]],
    annotations: Sequence[dict[str, Any]],
    class_id: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Detections, gts and ignored gts of class ``class_id``, one array per image.

    Example:
        >>> dets = [[np.zeros((0, 5)), np.ones((2, 5))]]
        >>> ann = [dict(bboxes=np.ones((3, 4)), labels=np.array([0, 1, 1]))]
        >>> d, g, i = get_cls_results(dets, ann, 1)
        >>> d[0].shape, g[0].shape, i[0].shape
        ((2, 5), (2, 4), (0, 4))
    """
    cls_dets = [img_res[class_id] for img_res in det_results]
    cls_gts = []
    cls_gts_ignore = []
    for ann in annotations:
        labels = np.asarray(ann["labels"])
        cls_gts.append(_boxes(ann["bboxes"], "annotation 'bboxes'")[labels == class_id, :])
        if ann.get("labels_ignore") is not None:
            ignored = _boxes(ann["bboxes_ignore"], "annotation 'bboxes_ignore'")
            cls_gts_ignore.append(ignored[np.asarray(ann["labels_ignore"]) == class_id, :])
        else:
            cls_gts_ignore.append(np.empty((0, 4), dtype=np.float32))
    return cls_dets, cls_gts, cls_gts_ignore


def get_cls_group_ofs(annotations: Sequence[dict[str, Any]], class_id: int) -> list[np.ndarray]:
    """The ``gt_is_group_ofs`` flags of class ``class_id``, one array per image."""
    group_ofs = []
    for ann in annotations:
        if ann.get("gt_is_group_ofs") is not None:
            group_ofs.append(np.asarray(ann["gt_is_group_ofs"])[ann["labels"] == class_id])
        else:
            group_ofs.append(np.empty((0,), dtype=bool))
    return group_ofs


def _call_tpfp(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------- eval_map


def eval_map(
    det_results: Sequence[Sequence[np.ndarray]],
    annotations: Sequence[dict[str, Any]],
    scale_ranges: Sequence[tuple[float, float]] | None = None,
    iou_thr: float = 0.5,
    ioa_thr: float | None = None,
    dataset: str | Sequence[str] | None = None,
    logger: LoggerLike = None,
    tpfp_fn: Callable[..., Any] | None = None,
    nproc: int = 4,
    use_legacy_coordinate: bool = False,
    use_group_of: bool = False,
) -> tuple[Any, list[dict[str, Any]]]:
    """Mean average precision over classes, exactly as MMDetection v2's ``eval_map``.

    Args:
        det_results: ``det_results[img][cls]`` = ``ndarray[n, 5]`` detections.
        annotations: Per image a dict with ``bboxes`` (``ndarray[n, 4]``), ``labels``
            (``ndarray[n]``) and optionally ``bboxes_ignore``, ``labels_ignore`` and, for Open
            Images, ``gt_is_group_ofs``.
        scale_ranges: ``[(min_side, max_side), ...]``; a gt counts in a range when its area is in
            ``[min_side**2, max_side**2)``. None evaluates all sizes together.
        iou_thr: IoU needed for a match.
        ioa_thr: IoA needed to fall into a group-of box (Open Images); None keeps 0.5.
        dataset: A dataset name or the class names. ``'voc07'`` switches to 11-point AP,
            ``'det'`` / ``'vid'`` to :func:`tpfp_imagenet`, ``'oid_challenge'`` / ``'oid_v6'``
            to :func:`tpfp_openimages`; names also label the printed table.
        logger: Where the summary goes (see :func:`~detforge.evaluation.table.print_log`).
        tpfp_fn: A custom ``fn(dets, gts, gts_ignore, iou_thr, area_ranges, legacy)``
            returning ``(tp, fp)`` (or ``(tp, fp, dets)``).
        nproc: Worker processes; used only for large inputs (the result never depends on it).
        use_legacy_coordinate: Widths are ``x2 - x1 + 1`` (VOC devkit convention).
        use_group_of: Use the Open Images group-of flags.

    Returns:
        ``(mean_ap, eval_results)``: mean AP over classes that have gts (a float, or a list per
        scale range), and per class a dict with ``num_gts``, ``num_dets``, ``recall``,
        ``precision`` and ``ap``.

    Example:
        >>> dets = [[np.array([[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.8]])]]
        >>> anns = [dict(bboxes=np.array([[0, 0, 10, 10]]), labels=np.array([0]))]
        >>> mean_ap, results = eval_map(dets, anns, logger='silent')
        >>> mean_ap, results[0]['num_gts'], results[0]['num_dets']
        (1.0, 1, 2)
    """
    if len(det_results) != len(annotations):
        raise ValueError(
            f"det_results has {len(det_results)} images but annotations has {len(annotations)}"
        )
    if len(det_results) == 0:
        raise ValueError("eval_map needs at least one image")
    extra = 1.0 if use_legacy_coordinate else 0.0
    num_imgs = len(det_results)
    num_classes = len(det_results[0])
    for idx, img_res in enumerate(det_results):
        if len(img_res) != num_classes:
            raise ValueError(
                f"det_results[{idx}] has {len(img_res)} classes, det_results[0] has {num_classes}"
            )
    num_scales = len(scale_ranges) if scale_ranges is not None else 1
    area_ranges = (
        [(rg[0] ** 2, rg[1] ** 2) for rg in scale_ranges] if scale_ranges is not None else None
    )

    if tpfp_fn is None:
        name = dataset if isinstance(dataset, str) else None
        if name in ("det", "vid"):
            tpfp_fn = tpfp_imagenet
        elif name in ("oid_challenge", "oid_v6") or use_group_of:
            tpfp_fn = tpfp_openimages
        else:
            tpfp_fn = tpfp_default
    if not callable(tpfp_fn):
        raise ValueError(f"tpfp_fn has to be a function or None, but got {tpfp_fn!r}")
    group_kwargs = tpfp_fn is tpfp_openimages or use_group_of

    use_pool = nproc > 1 and num_imgs >= _POOL_MIN_IMAGES and _picklable(tpfp_fn)
    pool = Pool(min(nproc, num_imgs)) if use_pool else None
    eval_results = []
    start = time.perf_counter()
    progress = tqdm(
        range(num_classes),
        desc=f"mAP@{iou_thr:g}",
        unit="class",
        leave=False,
        disable=logger == "silent" or not sys.stderr.isatty(),
    )
    try:
        for cls in progress:
            cls_dets, cls_gts, cls_gts_ignore = get_cls_results(det_results, annotations, cls)
            group_ofs = get_cls_group_ofs(annotations, cls) if use_group_of else None
            jobs = []
            for j in range(num_imgs):
                args = (
                    cls_dets[j],
                    cls_gts[j],
                    cls_gts_ignore[j],
                    iou_thr,
                    area_ranges,
                    use_legacy_coordinate,
                )
                kwargs: dict[str, Any] = {}
                if group_kwargs:
                    kwargs["gt_bboxes_group_of"] = group_ofs[j] if group_ofs else None
                    kwargs["use_group_of"] = use_group_of
                    if ioa_thr is not None:
                        kwargs["ioa_thr"] = ioa_thr
                jobs.append((tpfp_fn, args, kwargs))
            if pool is not None:
                outputs = pool.starmap(_call_tpfp, jobs)
            else:
                outputs = [_call_tpfp(*job) for job in jobs]
            tp = [out[0] for out in outputs]
            fp = [out[1] for out in outputs]
            if all(len(out) == 3 for out in outputs):
                cls_dets = [out[2] for out in outputs]
            eval_results.append(
                _class_result(tp, fp, cls_dets, cls_gts, area_ranges, num_scales, extra, dataset)
            )
    finally:
        if pool is not None:
            pool.close()
            pool.join()

    mean_ap: Any
    if scale_ranges is not None:
        all_ap = np.vstack([res["ap"] for res in eval_results])
        all_num_gts = np.vstack([res["num_gts"] for res in eval_results])
        mean_ap = []
        for i in range(num_scales):
            has_gt = all_num_gts[:, i] > 0
            mean_ap.append(float(all_ap[has_gt, i].mean()) if has_gt.any() else 0.0)
    else:
        aps = [res["ap"] for res in eval_results if res["num_gts"] > 0]
        mean_ap = np.array(aps).mean().item() if aps else 0.0
    print_map_summary(mean_ap, eval_results, dataset, area_ranges, logger=logger)
    print_log(
        f"mAP@{iou_thr:g} over {num_imgs} images evaluated in {time.perf_counter() - start:.2f}s",
        logger=logger,
    )
    return mean_ap, eval_results


def _class_result(
    tp_list: list[np.ndarray],
    fp_list: list[np.ndarray],
    cls_dets: list[np.ndarray],
    cls_gts: list[np.ndarray],
    area_ranges: list[tuple[float, float]] | None,
    num_scales: int,
    extra: float,
    dataset: str | Sequence[str] | None,
) -> dict[str, Any]:
    """Precision / recall / AP of one class from the per-image TP and FP flags."""
    num_gts = np.zeros(num_scales, dtype=int)
    for bbox in cls_gts:
        if area_ranges is None:
            num_gts[0] += bbox.shape[0]
        else:
            gt_areas = _areas(bbox, extra)
            for k, (min_area, max_area) in enumerate(area_ranges):
                num_gts[k] += np.sum((gt_areas >= min_area) & (gt_areas < max_area))
    non_empty = [_boxes(d, "det_results entry") for d in cls_dets if np.asarray(d).size > 0]
    dets = np.vstack(non_empty) if non_empty else np.zeros((0, 5), dtype=np.float32)
    order = np.argsort(-dets[:, -1])
    tp = np.cumsum(np.hstack(tp_list)[:, order], axis=1)
    fp = np.cumsum(np.hstack(fp_list)[:, order], axis=1)
    eps = np.finfo(np.float32).eps
    recalls = tp / np.maximum(num_gts[:, np.newaxis], eps)
    precisions = tp / np.maximum((tp + fp), eps)
    num_gts_out: Any = num_gts
    if area_ranges is None:
        recalls, precisions = recalls[0, :], precisions[0, :]
        num_gts_out = num_gts.item()
    mode = "11points" if isinstance(dataset, str) and dataset == "voc07" else "area"
    return {
        "num_gts": num_gts_out,
        "num_dets": dets.shape[0],
        "recall": recalls,
        "precision": precisions,
        "ap": average_precision(recalls, precisions, mode),
    }


def _label_names(dataset: str | Sequence[str] | None, num_classes: int) -> list[str]:
    if isinstance(dataset, str):
        names: Sequence[str] = VOC_CLASSES if dataset in _VOC_ALIASES else ()
    elif dataset is None:
        names = ()
    else:
        names = list(dataset)
    return [str(names[i]) if i < len(names) else str(i) for i in range(num_classes)]


def print_map_summary(
    mean_ap: Any,
    results: Sequence[dict[str, Any]],
    dataset: str | Sequence[str] | None = None,
    scale_ranges: Sequence[tuple[float, float]] | None = None,
    logger: LoggerLike = None,
) -> str:
    """Log the class / gts / dets / recall / ap table of :func:`eval_map` and return it.

    Args:
        mean_ap: The mAP (a list with one value per scale range when there are ranges).
        results: The per-class dicts from :func:`eval_map`.
        dataset: Class names, or a dataset name (VOC names are known; other names fall back to
            class indices).
        scale_ranges: The (area) ranges, logged above each table.
        logger: Where the table goes (see :func:`~detforge.evaluation.table.print_log`).

    Returns:
        The text of the table(s).
    """
    num_scales = len(results[0]["ap"]) if isinstance(results[0]["ap"], np.ndarray) else 1
    if scale_ranges is not None and len(scale_ranges) != num_scales:
        raise ValueError(f"{len(scale_ranges)} scale ranges for results with {num_scales} scales")
    num_classes = len(results)
    recalls = np.zeros((num_scales, num_classes), dtype=np.float32)
    aps = np.zeros((num_scales, num_classes), dtype=np.float32)
    num_gts = np.zeros((num_scales, num_classes), dtype=int)
    for i, res in enumerate(results):
        if res["recall"].size > 0:
            recalls[:, i] = np.array(res["recall"], ndmin=2)[:, -1]
        aps[:, i] = res["ap"]
        num_gts[:, i] = res["num_gts"]
    names = _label_names(dataset, num_classes)
    mean_aps = mean_ap if isinstance(mean_ap, list) else [mean_ap]
    texts = []
    for i in range(num_scales):
        rows: list[list[object]] = [["class", "gts", "dets", "recall", "ap"]]
        for j in range(num_classes):
            rows.append(
                [
                    names[j],
                    num_gts[i, j],
                    results[j]["num_dets"],
                    f"{recalls[i, j]:.3f}",
                    f"{aps[i, j]:.3f}",
                ]
            )
        rows.append(["mAP", "", "", "", f"{mean_aps[i]:.3f}"])
        table = format_table(rows, footer=True)
        if scale_ranges is not None:
            print_log(f"Scale range {scale_ranges[i]}", logger=logger)
            texts.append(f"Scale range {scale_ranges[i]}")
        print_log("\n" + table, logger=logger)
        texts.append(table)
    return "\n".join(texts)
