"""Detection confusion matrix (v2's ``tools/analysis_tools/confusion_matrix.py``).

Rows are ground-truth classes, columns predicted classes, and both have an extra last entry,
``background``. For every detection scoring at least ``score_thr`` (after an optional per-class
NMS) and every GT box it overlaps with IoU ``>= tp_iou_thr``, ``matrix[gt_label, det_label]``
gains one — so one detection can count for several GT boxes, as in v2. A detection that
overlaps no GT box counts in ``matrix[background, det_label]`` (false positive); a GT box that
no same-class detection overlapped counts in ``matrix[gt_label, background]`` (missed).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detforge.analysis.results import bbox_results

__all__ = [
    "analyze_per_img_dets",
    "calculate_confusion_matrix",
    "plot_confusion_matrix",
    "save_confusion_matrix",
]


def analyze_per_img_dets(
    confusion_matrix: np.ndarray,
    gt_bboxes: np.ndarray,
    gt_labels: np.ndarray,
    result: Sequence[np.ndarray],
    score_thr: float = 0.0,
    tp_iou_thr: float = 0.5,
    nms_iou_thr: float | None = None,
) -> None:
    """Add one image's detections to ``confusion_matrix`` (``[C + 1, C + 1]``) in place.

    Example:
        >>> m = np.zeros((3, 3))
        >>> gt, labels = np.array([[0, 0, 10, 10]], np.float32), np.array([0])
        >>> analyze_per_img_dets(m, gt, labels, [np.zeros((0, 5)), np.array([[0, 0, 10, 10, .9]])])
        >>> m.tolist()  # the GT of class 0 was found as class 1
        [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    from detforge.evaluation.overlaps import bbox_overlaps_np
    from detforge.ops.nms import nms

    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    true_positives = np.zeros(len(gt_labels), dtype=np.int64)
    for det_label, det_bboxes in enumerate(result):
        det_bboxes = np.asarray(det_bboxes, dtype=np.float32).reshape(-1, 5)
        if nms_iou_thr and len(det_bboxes):
            det_bboxes, _ = nms(
                np.ascontiguousarray(det_bboxes[:, :4]),
                np.ascontiguousarray(det_bboxes[:, 4]),
                nms_iou_thr,
                score_threshold=score_thr,
            )
        ious = bbox_overlaps_np(det_bboxes[:, :4], gt_bboxes)
        for i, det_bbox in enumerate(det_bboxes):
            if det_bbox[4] < score_thr:
                continue
            matched = 0
            for j, gt_label in enumerate(gt_labels):
                if ious[i, j] >= tp_iou_thr:
                    matched += 1
                    if gt_label == det_label:
                        true_positives[j] += 1
                    confusion_matrix[gt_label, det_label] += 1
            if matched == 0:
                confusion_matrix[-1, det_label] += 1
    for num_tp, gt_label in zip(true_positives, gt_labels, strict=True):
        if num_tp == 0:
            confusion_matrix[gt_label, -1] += 1


def calculate_confusion_matrix(
    annotations: Sequence[Any],
    results: Sequence[Any],
    num_classes: int,
    score_thr: float = 0.0,
    nms_iou_thr: float | None = None,
    tp_iou_thr: float = 0.5,
) -> np.ndarray:
    """The ``[num_classes + 1, num_classes + 1]`` matrix over all images.

    Args:
        annotations: Per image a dict with ``bboxes`` and ``labels`` (``dataset.get_ann_info``),
            or a dataset (anything with ``get_ann_info`` and ``len``).
        results: Per image a v2 result (masks, if any, are ignored).
        num_classes: Foreground classes.
        score_thr: Detections scoring lower are ignored.
        nms_iou_thr: Per-class NMS over the detections first, if given.
        tp_iou_thr: IoU that makes a detection and a GT box a match.

    Raises:
        ValueError: results and annotations differ in length, or a result has another number
            of classes.
    """
    from tqdm import tqdm

    get = annotations.get_ann_info if hasattr(annotations, "get_ann_info") else None
    if len(annotations) != len(results):
        raise ValueError(f"{len(results)} results for {len(annotations)} images")
    boxes = bbox_results(results)
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.float64)
    for idx in tqdm(range(len(results)), desc="confusion matrix", unit="img", dynamic_ncols=True):
        result = boxes[idx]
        if len(result) != num_classes:
            raise ValueError(
                f"result {idx} has {len(result)} classes but the dataset has {num_classes}"
            )
        ann = get(idx) if get is not None else annotations[idx]
        analyze_per_img_dets(
            matrix, ann["bboxes"], ann["labels"], result, score_thr, tp_iou_thr, nms_iou_thr
        )
    return matrix


def save_confusion_matrix(
    matrix: np.ndarray, labels: Sequence[str], save_dir: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Write the raw counts to ``confusion_matrix.npy`` and ``confusion_matrix.csv`` (with a
    header row and a first column of class names); return both paths."""
    import csv
    import io

    from detforge.utils.fileio import atomic_write

    out = Path(save_dir)
    out.mkdir(parents=True, exist_ok=True)
    npy = out / "confusion_matrix.npy"
    buffer = io.BytesIO()
    np.save(buffer, matrix)
    atomic_write(npy, buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["gt \\ pred", *labels])
    for name, row in zip(labels, matrix, strict=True):
        writer.writerow([name, *(int(v) if float(v).is_integer() else v for v in row)])
    csv_path = out / "confusion_matrix.csv"
    atomic_write(csv_path, text.getvalue())
    return npy, csv_path


def plot_confusion_matrix(
    matrix: np.ndarray,
    labels: Sequence[str],
    save_dir: str | os.PathLike[str] | None = None,
    show: bool = False,
    title: str = "Normalized Confusion Matrix",
    color_theme: str = "plasma",
) -> Path | None:
    """Plot the row-normalised matrix in percent (v2's figure) to ``confusion_matrix.png``.

    Rows without any GT (the background row when nothing was a false positive) print ``-1%``.
    """
    import matplotlib

    if not show:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        percent = matrix.astype(np.float32) / matrix.sum(axis=1, keepdims=True) * 100
    num = len(labels)
    side = max(0.5 * num, 4.0)
    fig, ax = plt.subplots(figsize=(side, side * 0.8), dpi=180)
    image = ax.imshow(percent, cmap=plt.get_cmap(color_theme))
    fig.colorbar(mappable=image, ax=ax)
    ax.set_title(title, fontdict={"weight": "bold", "size": 12})
    ax.set_ylabel("Ground Truth Label", fontdict={"size": 10})
    ax.set_xlabel("Prediction Label", fontdict={"size": 10})
    ax.set_xticks(np.arange(num))
    ax.set_yticks(np.arange(num))
    ax.set_xticklabels(labels)
    ax.set_yticklabels(labels)
    ax.set_xticks(np.arange(num + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(num + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linestyle="-", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(axis="x", bottom=False, top=True, labelbottom=False, labeltop=True)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="left", rotation_mode="anchor")
    for i in range(num):
        for j in range(num):
            value = percent[i, j]
            text = f"{int(value) if not np.isnan(value) else -1}%"
            ax.text(j, i, text, ha="center", va="center", color="w", size=7)
    ax.set_ylim(num - 0.5, -0.5)
    fig.tight_layout()
    path = None
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        path = Path(save_dir) / "confusion_matrix.png"
        fig.savefig(path, format="png")
    if show:
        plt.show()
    plt.close(fig)
    return path
