"""COCO result files and COCO-protocol evaluation with MMDetection v2's keys and rounding.

The COCO dataset class calls these: :func:`results2json` writes the v2 result files
(``<prefix>.bbox.json`` / ``.segm.json`` / ``.proposal.json``), :func:`evaluate_coco` runs
pycocotools' ``COCOeval`` on them and returns the v2 result dict (``bbox_mAP``,
``bbox_mAP_50``, ..., ``bbox_mAP_copypaste``; ``AR@100``, ... for proposals).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.errors import DetforgeError
from detforge.evaluation.recall import eval_recalls
from detforge.evaluation.table import LoggerLike, format_table, print_log
from detforge.structures.bbox import bbox_xywh_to_xyxy, bbox_xyxy_to_xywh
from detforge.structures.det_result import split_v2_result
from detforge.structures.masks import rle_encode, split_mask_scores
from detforge.utils.fileio import atomic_write

__all__ = [
    "COCO_ALLOWED_METRICS",
    "COCO_METRIC_ITEMS",
    "MetricKeyError",
    "det2json",
    "evaluate_coco",
    "fast_eval_recall",
    "proposal2json",
    "results2json",
    "run_cocoeval",
    "segm2json",
]

#: Index of each metric item in ``COCOeval.stats``.
COCO_METRIC_ITEMS = {
    "mAP": 0, "mAP_50": 1, "mAP_75": 2, "mAP_s": 3, "mAP_m": 4, "mAP_l": 5,
    "AR@100": 6, "AR@300": 7, "AR@1000": 8, "AR_s@1000": 9, "AR_m@1000": 10, "AR_l@1000": 11,
}  # fmt: skip
#: The metrics of the COCO protocol (v2's ``CocoDataset.evaluate`` ``allowed_metrics``).
COCO_ALLOWED_METRICS = ("bbox", "segm", "proposal", "proposal_fast")
_DET_ITEMS = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
_PROPOSAL_ITEMS = ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]

JsonResults = list[dict[str, Any]]


class MetricKeyError(DetforgeError, KeyError):
    """An unknown metric, metric item or missing result file (a ``KeyError`` in v2)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- results -> json


def _json_id(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_lengths(results: Sequence[Any], img_ids: Sequence[Any]) -> None:
    if len(results) != len(img_ids):
        raise ValueError(f"got results for {len(results)} images but {len(img_ids)} img_ids")


def proposal2json(results: Sequence[np.ndarray], img_ids: Sequence[Any]) -> JsonResults:
    """Per-image ``ndarray[k, 5]`` proposals -> COCO result dicts with ``category_id`` 1.

    Example:
        >>> proposal2json([np.array([[0, 0, 4, 2, 0.5]])], [7])
        [{'image_id': 7, 'bbox': [0.0, 0.0, 4.0, 2.0], 'score': 0.5, 'category_id': 1}]
    """
    _check_lengths(results, img_ids)
    out: JsonResults = []
    for img_id, bboxes in zip(img_ids, results, strict=True):
        out.extend(_det_entries(img_id, np.asarray(bboxes).reshape(-1, 5), 1))
    return out


def _det_entries(img_id: Any, bboxes: np.ndarray, cat_id: Any) -> JsonResults:
    """COCO result dicts of ``bboxes [k, 5]``; ``bbox`` is ``[x, y, w, h]`` in Python floats
    computed in float64, as v2's ``bbox.tolist()`` arithmetic."""
    corners = bboxes[:, :4]
    if corners.dtype.kind == "f":
        corners = corners.astype(np.float64)
    return [
        {
            "image_id": _json_id(img_id),
            "bbox": xywh,
            "score": float(box[4]),
            "category_id": _json_id(cat_id),
        }
        for xywh, box in zip(bbox_xyxy_to_xywh(corners).tolist(), bboxes, strict=True)
    ]


def _per_class(result: Sequence[np.ndarray], cat_ids: Sequence[Any], idx: int) -> None:
    if len(result) > len(cat_ids):
        raise ValueError(
            f"results of image {idx} have {len(result)} classes but only {len(cat_ids)} cat_ids"
        )


def det2json(
    results: Sequence[Sequence[np.ndarray]], img_ids: Sequence[Any], cat_ids: Sequence[Any]
) -> JsonResults:
    """Per-image, per-class ``ndarray[n, 5]`` detections -> COCO bbox result dicts.

    Class ``i`` of the results gets ``cat_ids[i]``.

    Example:
        >>> det2json([[np.zeros((0, 5)), np.array([[0, 0, 4, 2, 0.5]])]], [7], [1, 3])
        [{'image_id': 7, 'bbox': [0.0, 0.0, 4.0, 2.0], 'score': 0.5, 'category_id': 3}]
    """
    _check_lengths(results, img_ids)
    out: JsonResults = []
    for idx, (img_id, result) in enumerate(zip(img_ids, results, strict=True)):
        _per_class(result, cat_ids, idx)
        for label, bboxes in enumerate(result):
            boxes = np.asarray(bboxes).reshape(-1, 5)
            out.extend(_det_entries(img_id, boxes, cat_ids[label]))
    return out


def _rle(mask: Any) -> dict[str, Any]:
    """A mask as a JSON-ready RLE dict (``counts`` as str); accepts RLE dicts and bitmaps."""
    if isinstance(mask, Mapping):
        if "counts" not in mask or "size" not in mask:
            raise ValueError(f"an RLE mask needs 'size' and 'counts', got keys {sorted(mask)}")
        rle = dict(mask)
    elif isinstance(mask, np.ndarray) and mask.ndim == 2:
        rle = rle_encode(mask)
    else:
        raise TypeError(
            f"a mask must be an RLE dict or a 2-d array, got {type(mask).__name__}"
            + (f" of shape {mask.shape}" if isinstance(mask, np.ndarray) else "")
        )
    if isinstance(rle["counts"], bytes):
        rle["counts"] = rle["counts"].decode()
    return rle


def segm2json(
    results: Sequence[tuple[Any, Any]], img_ids: Sequence[Any], cat_ids: Sequence[Any]
) -> tuple[JsonResults, JsonResults]:
    """``(det, segm)`` per image -> ``(bbox_json, segm_json)`` COCO result dicts.

    ``segm[cls]`` lists one mask per detection of that class (an RLE dict or a binary
    ``ndarray[H, W]``); ``segm`` may also be ``(masks, mask_scores)`` for detectors that score
    masks separately. Each mask entry keeps the detection's box (v2), and its score is the mask
    score when given, else the box score. The input masks are not modified.

    Example:
        >>> box = np.array([[0, 0, 2, 1, 0.9]])
        >>> mask = np.zeros((2, 3), dtype=np.uint8); mask[0, :2] = 1
        >>> bbox_json, segm_json = segm2json([([box], [[mask]])], [5], [1])
        >>> segm_json[0]['segmentation'], segm_json[0]['score']
        ({'size': [2, 3], 'counts': '01102'}, 0.9)
    """
    _check_lengths(results, img_ids)
    bbox_json: JsonResults = []
    segm_json: JsonResults = []
    for idx, (img_id, result) in enumerate(zip(img_ids, results, strict=True)):
        det, seg = split_v2_result(result)
        if seg is None:
            raise TypeError(f"segm results of image {idx} must be a (det, segm) tuple")
        segms, scores = split_mask_scores(seg)
        _per_class(det, cat_ids, idx)
        for label, bboxes in enumerate(det):
            boxes = np.asarray(bboxes).reshape(-1, 5)
            entries = _det_entries(img_id, boxes, cat_ids[label])
            bbox_json.extend(entries)
            masks = segms[label]
            mask_scores = boxes[:, 4] if scores is None else scores[label]
            if len(masks) != boxes.shape[0]:
                raise ValueError(
                    f"image {idx}, class {label}: {boxes.shape[0]} boxes but {len(masks)} masks"
                )
            for entry, mask, score in zip(entries, masks, mask_scores, strict=True):
                segm_json.append({**entry, "score": float(score), "segmentation": _rle(mask)})
    return bbox_json, segm_json


def _dump(data: JsonResults, path: str) -> None:
    atomic_write(path, json.dumps(data))


def results2json(
    results: Sequence[Any],
    img_ids: Sequence[Any],
    cat_ids: Sequence[Any],
    outfile_prefix: str | os.PathLike[str],
) -> dict[str, str]:
    """Write the COCO result files of ``results`` and return their paths by metric.

    The kind is told by the first image's result, as in v2: a list (boxes per class) writes
    ``<prefix>.bbox.json``; a ``(det, segm)`` tuple writes ``.bbox.json`` and ``.segm.json``;
    an ``ndarray`` (proposals) writes ``.proposal.json``. For boxes, ``'proposal'`` maps to the
    bbox file too. Files are written atomically.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     files = results2json([[np.array([[0, 0, 4, 2, 0.5]])]], [7], [1], f'{tmp}/r')
        ...     sorted(files), files['bbox'].endswith('r.bbox.json')
        (['bbox', 'proposal'], True)
    """
    if len(results) == 0:
        raise ValueError("results is empty: nothing to write")
    prefix = os.fspath(outfile_prefix)
    first = results[0]
    files: dict[str, str] = {}
    if isinstance(first, list):
        files["bbox"] = files["proposal"] = f"{prefix}.bbox.json"
        _dump(det2json(results, img_ids, cat_ids), files["bbox"])
    elif isinstance(first, tuple):
        bbox_json, segm_json = segm2json(results, img_ids, cat_ids)
        files["bbox"] = files["proposal"] = f"{prefix}.bbox.json"
        files["segm"] = f"{prefix}.segm.json"
        _dump(bbox_json, files["bbox"])
        _dump(segm_json, files["segm"])
    elif isinstance(first, np.ndarray):
        files["proposal"] = f"{prefix}.proposal.json"
        _dump(proposal2json(results, img_ids), files["proposal"])
    else:
        raise TypeError(
            "results[0] must be a list (boxes per class), a (det, segm) tuple or an ndarray "
            f"(proposals), got {type(first).__name__}"
        )
    return files


# --------------------------------------------------------------------------- evaluation


def _load_gt(coco_gt: COCO | str | os.PathLike[str]) -> COCO:
    if isinstance(coco_gt, str | os.PathLike):
        if not Path(coco_gt).is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {coco_gt}")
        return COCO(os.fspath(coco_gt))
    return coco_gt


def fast_eval_recall(
    results: Sequence[np.ndarray],
    coco_gt: COCO,
    img_ids: Sequence[Any],
    proposal_nums: Sequence[int] = (100, 300, 1000),
    iou_thrs: Sequence[float] | np.ndarray | None = None,
    logger: LoggerLike = "silent",
) -> np.ndarray:
    """Average recall (over ``iou_thrs``) of proposals against the non-crowd COCO boxes.

    Args:
        results: Per image ``ndarray[k, 5]`` (or ``[k, 4]``) proposals, in ``img_ids`` order.
        coco_gt: The ground truth.
        img_ids: The image ids the results belong to.
        proposal_nums: Proposal budgets.
        iou_thrs: IoU thresholds; None means ``0.50:0.05:0.95``.
        logger: Where the recall table goes (silent by default, as v2).

    Returns:
        ``ndarray[len(proposal_nums)]``: recall averaged over the thresholds.
    """
    _check_lengths(results, img_ids)
    for idx, res in enumerate(results):
        if not isinstance(res, np.ndarray):
            raise TypeError(
                "proposal_fast needs one proposal ndarray per image (RPN results), got "
                f"{type(res).__name__} for image {idx}"
            )
    gt_bboxes = []
    for img_id in img_ids:
        xywh = [
            ann["bbox"]
            for ann in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=img_id))
            if not (ann.get("ignore", False) or ann.get("iscrowd", 0))
        ]
        # float64 sums, then float32: the same numbers as v2's Python arithmetic
        xyxy = bbox_xywh_to_xyxy(np.asarray(xywh, dtype=np.float64).reshape(-1, 4))
        gt_bboxes.append(xyxy.astype(np.float32))
    thrs = _default_iou_thrs() if iou_thrs is None else np.asarray(iou_thrs, dtype=float)
    recalls = eval_recalls(gt_bboxes, list(results), list(proposal_nums), thrs, logger=logger)
    return np.asarray(recalls.mean(axis=1))


def _default_iou_thrs() -> np.ndarray:
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def run_cocoeval(
    coco_gt: COCO,
    predictions: JsonResults,
    iou_type: str,
    cat_ids: Sequence[int] | None = None,
    img_ids: Sequence[int] | None = None,
    proposal_nums: Sequence[int] = (100, 300, 1000),
    iou_thrs: Sequence[float] | np.ndarray | None = None,
    use_cats: bool = True,
    logger: LoggerLike = None,
) -> COCOeval:
    """Run ``COCOeval`` with v2's parameters and return it (``.stats`` holds the 12 numbers).

    ``maxDets`` is ``proposal_nums`` (so ``mAP`` uses the last budget, 1000 by default);
    ``iouThrs`` defaults to ``0.50:0.05:0.95``. pycocotools prints its own progress;
    ``summarize()`` goes to the logger.

    Args:
        coco_gt: The ground truth.
        predictions: COCO result dicts (not modified).
        iou_type: ``'bbox'`` or ``'segm'``.
        cat_ids: Categories to evaluate (default all).
        img_ids: Images to evaluate (default all).
        proposal_nums: ``maxDets``; at least three values.
        iou_thrs: IoU thresholds.
        use_cats: False pools all categories (proposal recall).
        logger: Where the summary goes (see :func:`~detforge.evaluation.table.print_log`).

    Returns:
        The evaluated, accumulated and summarized ``COCOeval``.
    """
    if len(proposal_nums) < 3:
        raise ValueError(f"proposal_nums needs 3 values for COCOeval, got {list(proposal_nums)}")
    unknown = {p["image_id"] for p in predictions} - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(
            f"{len(unknown)} result image ids are not in the COCO ground truth, "
            f"e.g. {sorted(unknown, key=str)[:5]}"
        )
    coco_det = coco_gt.loadRes([dict(p) for p in predictions])
    coco_eval = COCOeval(coco_gt, coco_det, iou_type)
    coco_eval.params.catIds = list(coco_gt.getCatIds() if cat_ids is None else cat_ids)
    coco_eval.params.imgIds = list(coco_gt.getImgIds() if img_ids is None else img_ids)
    coco_eval.params.maxDets = list(proposal_nums)
    coco_eval.params.iouThrs = _default_iou_thrs() if iou_thrs is None else np.asarray(iou_thrs)
    if not use_cats:
        coco_eval.params.useCats = 0
    coco_eval.evaluate()
    coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    print_log("\n" + summary.getvalue(), logger=logger)
    return coco_eval


def _classwise_table(coco_gt: COCO, coco_eval: COCOeval) -> str:
    """Per-category AP (IoU 0.50:0.95, all areas, last maxDets), 3 pairs per row as v2."""
    precisions = coco_eval.eval["precision"]  # [iou, recall, cat, area, max_dets]
    eval_cat_ids = list(coco_eval.params.catIds)  # COCOeval sorts these
    pairs = []
    for k, cat_id in enumerate(eval_cat_ids):
        precision = precisions[:, :, k, 0, -1]
        precision = precision[precision > -1]
        ap = float(np.mean(precision)) if precision.size else float("nan")
        pairs.append((coco_gt.loadCats(int(cat_id))[0]["name"], f"{ap:0.3f}"))
    num_columns = min(6, len(pairs) * 2)
    flat = list(itertools.chain(*pairs))
    rows: list[list[object]] = [["category", "AP"] * (num_columns // 2)]
    rows += [
        list(r) for r in itertools.zip_longest(*[flat[i::num_columns] for i in range(num_columns)])
    ]
    return format_table(rows)


def _load_predictions(source: Any, metric: str) -> JsonResults:
    if isinstance(source, str | os.PathLike):
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
    else:
        data = source
    if not isinstance(data, list):
        raise TypeError(
            f"results for {metric!r} must be a list of dicts, got {type(data).__name__}"
        )
    return data


def evaluate_coco(
    coco_gt: COCO | str | os.PathLike[str],
    result_files_or_lists: Mapping[str, Any],
    metrics: str | Sequence[str] = ("bbox",),
    classwise: bool = False,
    proposal_nums: Sequence[int] = (100, 300, 1000),
    iou_thrs: Sequence[float] | np.ndarray | None = None,
    metric_items: str | Sequence[str] | None = None,
    cat_ids: Sequence[int] | None = None,
    img_ids: Sequence[int] | None = None,
    logger: LoggerLike = None,
) -> OrderedDict[str, Any]:
    """COCO-protocol evaluation returning MMDetection v2's result dict.

    Args:
        coco_gt: The ground truth (a ``COCO`` object or the path of its json).
        result_files_or_lists: Per metric (``'bbox'``, ``'segm'``, ``'proposal'``) a result
            json path (as from :func:`results2json`) or the list of result dicts; for
            ``'proposal_fast'`` the raw per-image proposal arrays.
        metrics: Metric name(s) out of ``bbox``, ``segm``, ``proposal``, ``proposal_fast``.
        classwise: Also log a per-category AP table (bbox / segm).
        proposal_nums: ``maxDets`` for COCOeval and the budgets of ``proposal_fast``.
        iou_thrs: IoU thresholds; None means ``0.50:0.05:0.95``.
        metric_items: Items to return (keys of :data:`COCO_METRIC_ITEMS`); None gives the six
            AP items for bbox / segm and the six AR items for proposals.
        cat_ids: Categories to evaluate, in the order of the model's classes (default all).
        img_ids: Images to evaluate (default all).
        logger: Where the progress and tables go (see
            :func:`~detforge.evaluation.table.print_log`).

    Returns:
        ``{metric}_{item}`` floats rounded to 4 decimals and ``{metric}_mAP_copypaste`` for bbox
        / segm; ``AR@100`` ... for proposals; ``AR@{num}`` for ``proposal_fast``. A metric whose
        results are empty is logged as an error and skipped.

    Raises:
        MetricKeyError: unknown metric or metric item, or no results given for a metric.
    """
    metric_list = [metrics] if isinstance(metrics, str) else list(metrics)
    for metric in metric_list:
        if metric not in COCO_ALLOWED_METRICS:
            raise MetricKeyError(
                f"metric {metric!r} is not supported; allowed: {', '.join(COCO_ALLOWED_METRICS)}"
            )
    items = [metric_items] if isinstance(metric_items, str) else metric_items
    if items is not None:
        for item in items:
            if item not in COCO_METRIC_ITEMS:
                raise MetricKeyError(
                    f"metric item {item!r} is not supported; allowed: "
                    f"{', '.join(COCO_METRIC_ITEMS)}"
                )
    gt = _load_gt(coco_gt)
    thrs = _default_iou_thrs() if iou_thrs is None else np.asarray(iou_thrs, dtype=float)
    eval_img_ids = list(gt.getImgIds() if img_ids is None else img_ids)
    eval_results: OrderedDict[str, Any] = OrderedDict()
    for metric in metric_list:
        print_log(f"Evaluating {metric}...", logger=logger)
        start = time.perf_counter()
        if metric not in result_files_or_lists:
            raise MetricKeyError(
                f"{metric} is not in results; given: {', '.join(map(str, result_files_or_lists))}"
            )
        if metric == "proposal_fast":
            ar = fast_eval_recall(
                result_files_or_lists[metric], gt, eval_img_ids, proposal_nums, thrs
            )
            for i, num in enumerate(proposal_nums):
                eval_results[f"AR@{num}"] = float(ar[i])
            lines = "".join(f"\nAR@{num}\t{ar[i]:.4f}" for i, num in enumerate(proposal_nums))
            print_log(lines, logger=logger)
            print_log(_done(metric, start), logger=logger)
            continue

        predictions = _load_predictions(result_files_or_lists[metric], metric)
        if not predictions:
            print_log("The testing results of the whole dataset is empty.", logger, logging.ERROR)
            continue
        if metric == "segm":
            # without 'bbox', loadRes takes each instance's area from its mask (v2 >= 2.12)
            predictions = [{k: v for k, v in p.items() if k != "bbox"} for p in predictions]
        coco_eval = run_cocoeval(
            gt,
            predictions,
            "bbox" if metric == "proposal" else metric,
            cat_ids=cat_ids,
            img_ids=eval_img_ids,
            proposal_nums=proposal_nums,
            iou_thrs=thrs,
            use_cats=metric != "proposal",
            logger=logger,
        )
        stats = coco_eval.stats
        if metric == "proposal":
            for item in items if items is not None else _PROPOSAL_ITEMS:
                eval_results[item] = float(f"{stats[COCO_METRIC_ITEMS[item]]:.4f}")
        else:
            if classwise:
                print_log("\n" + _classwise_table(gt, coco_eval), logger=logger)
            for item in items if items is not None else _DET_ITEMS:
                eval_results[f"{metric}_{item}"] = float(f"{stats[COCO_METRIC_ITEMS[item]]:.4f}")
            eval_results[f"{metric}_mAP_copypaste"] = " ".join(f"{v:.4f}" for v in stats[:6])
        print_log(_done(metric, start), logger=logger)
    return eval_results


def _done(metric: str, start: float) -> str:
    return f"Evaluating {metric}... done in {time.perf_counter() - start:.2f}s"
