"""Saved v2 results (``results.pkl``) and the dataset they belong to, for the analysis tools.

A ``results.pkl`` is what ``detforge test --out`` (v2 ``tools/test.py --out``) writes: one entry
per test image, in dataset order, each a list over classes of ``ndarray[n, 5]``
(``x1, y1, x2, y2, score``) or ``(bbox_results, segm_results)`` with RLE-encoded masks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.errors import DetforgeError
from detforge.structures.det_result import DetResult, split_v2_result
from detforge.utils.safe_pickle import load_pickle

__all__ = [
    "ResultsError",
    "bbox_results",
    "build_test_dataset",
    "draw_gt_and_dets",
    "flatten_result",
    "load_results",
    "loading_pipeline",
]

# v2's imshow_gt_det_bboxes colours (RGB, as every palette spec of the shared drawer).
GT_COLOR = (61, 102, 255)
DET_COLOR = (241, 101, 72)


class ResultsError(DetforgeError, ValueError):
    """A results file that cannot belong to the dataset (wrong type or length)."""


def load_results(path: str | os.PathLike[str], num_images: int | None = None) -> list[Any]:
    """Read a ``results.pkl`` and check it has one v2 result per image.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafePickleError: the file holds code or objects other than data (nothing of it runs).
        ResultsError: it holds no list of v2 results, or ``num_images`` differs from its length.

    Example:
        >>> import pickle, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'r.pkl')
        >>> with open(path, 'wb') as f:
        ...     pickle.dump([[np.zeros((0, 5), np.float32)]], f)
        >>> len(load_results(path, num_images=1))
        1
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results file not found: {path}")
    results = load_pickle(path, "results file")
    if not isinstance(results, list) or (results and not isinstance(results[0], list | tuple)):
        kind = type(results[0] if isinstance(results, list) else results).__name__
        raise ResultsError(
            f"{path}: expected a list of per-image v2 results (lists over classes of [n, 5] "
            f"arrays, or (bbox, segm) tuples), found {kind}"
        )
    if num_images is not None and len(results) != num_images:
        raise ResultsError(
            f"{path} holds {len(results)} results but the test dataset has {num_images} images: "
            "was it written with this config's data.test?"
        )
    return results


def bbox_results(results: Sequence[Any]) -> list[Any]:
    """The box part of every result (drops the masks of ``(bbox, segm)`` results)."""
    return [split_v2_result(r)[0] for r in results]


def loading_pipeline(pipeline: Sequence[Any]) -> list[Any]:
    """Only the loading steps of a pipeline (v2's ``get_loading_pipeline``): images and
    annotations in their original frame, as results with ``rescale=True`` are."""
    from detforge.datasets.transforms.loading import LoadAnnotations, LoadImageFromFile
    from detforge.registry import TRANSFORMS

    kept = []
    for step in pipeline:
        kind = step.get("type") if isinstance(step, Mapping) else None
        cls = TRANSFORMS.get(kind) if isinstance(kind, str) else kind
        if isinstance(cls, type) and issubclass(cls, LoadImageFromFile | LoadAnnotations):
            kept.append(dict(step))
    return kept


def build_test_dataset(cfg: Any, pipeline: Sequence[Any] | None = None) -> Any:
    """``cfg.data.test`` built with ``test_mode=True`` (and ``pipeline`` if given)."""
    from detforge.datasets.builder import build_dataset

    test_cfg = dict(cfg.data.test)
    test_cfg.pop("samples_per_gpu", None)
    test_cfg["test_mode"] = True
    if pipeline is not None:
        test_cfg["pipeline"] = list(pipeline)
    return build_dataset(test_cfg)


def flatten_result(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One v2 result as ``(bboxes [N, 5], labels [N], masks [N, H, W] bool or None)``.

    A view of :meth:`DetResult.from_v2` (which decodes RLE masks); ``masks`` is None for a
    box-only result or one without detections.

    Raises:
        ResultsError: ``result`` is no v2 result, or a class has other counts of boxes and masks.

    Example:
        >>> boxes, labels, masks = flatten_result([np.zeros((0, 5)), np.ones((2, 5))])
        >>> boxes.shape, labels.tolist(), masks
        ((2, 5), [1, 1], None)
    """
    try:
        dets = DetResult.from_v2(result)
    except (TypeError, ValueError) as exc:
        raise ResultsError(str(exc)) from exc
    masks = dets.masks if dets.masks is not None and len(dets) else None
    return dets.det_bboxes, dets.labels, masks


def _gt_masks(data: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
    masks = data.get("gt_masks")
    if masks is None:
        return None
    array = masks.to_ndarray() if hasattr(masks, "to_ndarray") else np.asarray(masks)
    if not len(array) or array.shape[1:] != shape:
        return None
    return array.astype(bool)


def draw_gt_and_dets(
    img: np.ndarray,
    data: Mapping[str, Any],
    result: Any,
    class_names: Sequence[str] | None,
    score_thr: float = 0.0,
    palette: Any = None,
    overlay: bool = False,
) -> np.ndarray:
    """GT of ``data`` (``gt_bboxes``, ``gt_labels``, ``gt_masks``) and ``result`` on ``img``.

    ``overlay=False`` stacks two copies, GT above and predictions below (v2's default in
    ``analyze_results.py``); ``overlay=True`` draws both on one image, GT in blue, predictions
    in orange.
    """
    from detforge.visualization.draw import draw_det_bboxes

    gt_bboxes = np.asarray(data.get("gt_bboxes", np.zeros((0, 4))), dtype=np.float32)
    gt_labels = np.asarray(data.get("gt_labels", np.zeros(0)), dtype=np.int64)
    bboxes, labels, masks = flatten_result(result)
    if masks is not None and masks.shape[1:] != img.shape[:2]:
        masks = None  # masks of another frame than the image (should not happen with rescale)
    gt_color = GT_COLOR if overlay else palette
    drawn = draw_det_bboxes(
        img,
        gt_bboxes.reshape(-1, 4),
        gt_labels,
        _gt_masks(data, img.shape[:2]),
        class_names,
        bbox_color=gt_color,
        text_color=(200, 200, 200),
        mask_color=gt_color,
    )
    det_color = DET_COLOR if overlay else palette
    dets = draw_det_bboxes(
        drawn if overlay else img,
        bboxes,
        labels,
        masks,
        class_names,
        score_thr=score_thr,
        bbox_color=det_color,
        text_color=(200, 200, 200),
        mask_color=det_color,
    )
    return dets if overlay else np.concatenate([drawn, dets], axis=0)
