"""YOLO-style anchor sizes fitted to a dataset (v2's ``tools/analysis_tools/optimize_anchors.py``).

Every training box becomes a ``(w, h)`` pair scaled as the model will see it: the image's
longer side is mapped to ``input_shape`` (``w / (max(W, H) / input_w)``, likewise ``h``). The
anchors are ``(w, h)`` pairs too, compared with the boxes as if both were centred at the
origin, so IoU measures shape and size only. ``k-means`` clusters with the distance
``1 - IoU`` (centres are cluster means); ``differential_evolution`` (scipy) minimises
``1 - mean best IoU`` over all anchors at once. Results are sorted by area and rounded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "avg_iou_cost",
    "collect_box_sizes",
    "differential_evolution_anchors",
    "kmeans_anchors",
    "num_anchors_per_level",
    "save_anchors",
    "wh_iou",
]


def num_anchors_per_level(generator_cfg: Mapping[str, Any]) -> list[int]:
    """How many anchors each level has, from a ``YOLOAnchorGenerator``'s ``base_sizes``.

    Example:
        >>> num_anchors_per_level(dict(type='YOLOAnchorGenerator', strides=[32, 16],
        ...     base_sizes=[[(116, 90), (156, 198)], [(30, 61)]]))
        [2, 1]
    """
    kind = generator_cfg.get("type")
    base_sizes = generator_cfg.get("base_sizes")
    if kind != "YOLOAnchorGenerator" or not isinstance(base_sizes, Sequence):
        raise ValueError(
            "optimize-anchors supports YOLO-style anchors only: model.bbox_head.anchor_generator "
            f"must be a YOLOAnchorGenerator with base_sizes=[[(w, h), ...], ...]; got type "
            f"{kind!r} with base_sizes {base_sizes!r}"
        )
    return [len(level) for level in base_sizes]


def collect_box_sizes(dataset: Any, input_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(whs [n, 2], img_shapes [n, 2])`` of every annotated box, scaled to ``input_shape``.

    Args:
        dataset: A dataset with ``data_infos`` (``width``, ``height``) and ``get_ann_info``.
        input_shape: ``(W, H)`` the longer image side is scaled to.
    """
    from tqdm import tqdm

    whs, shapes = [], []
    for idx in tqdm(range(len(dataset)), desc="collect boxes", unit="img", dynamic_ncols=True):
        info = dataset.data_infos[idx]
        if "width" not in info or "height" not in info:
            raise KeyError(f"image {idx} ({info.get('filename')}): data_infos has no width/height")
        boxes = np.asarray(dataset.get_ann_info(idx)["bboxes"], np.float64).reshape(-1, 4)
        whs.append(boxes[:, 2:4] - boxes[:, 0:2])
        shapes.append(np.tile([float(info["width"]), float(info["height"])], (len(boxes), 1)))
    if not whs or not sum(len(w) for w in whs):
        raise ValueError("optimize-anchors: the training set has no boxes")
    bbox_whs, img_shapes = np.concatenate(whs), np.concatenate(shapes)
    ratios = img_shapes.max(axis=1, keepdims=True) / np.asarray([input_shape], np.float64)
    return bbox_whs / ratios, img_shapes


def wh_iou(whs: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU ``[n, k]`` of origin-centred boxes ``[n, 2]`` and anchors ``[k, 2]`` (``w, h``).

    Example:
        >>> wh_iou(np.array([[10., 10.]]), np.array([[10., 10.], [20., 5.]])).tolist()
        [[1.0, 0.3333333333333333]]
    """
    inter = np.minimum(whs[:, None, 0], anchors[None, :, 0]) * np.minimum(
        whs[:, None, 1], anchors[None, :, 1]
    )
    union = (whs[:, 0] * whs[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None] - inter
    return inter / np.maximum(union, 1e-9)


def _sorted(anchors: np.ndarray) -> np.ndarray:
    return anchors[np.argsort(anchors[:, 0] * anchors[:, 1], kind="stable")]


def kmeans_anchors(
    whs: np.ndarray, num_anchors: int, iters: int = 1000, seed: int | None = 0
) -> tuple[np.ndarray, float]:
    """k-means on ``(w, h)`` with distance ``1 - IoU``: ``(anchors [k, 2] by area, mean IoU)``.

    Centres start k-means++ style (far in IoU from those chosen); each step assigns every box
    to its best-IoU centre and moves the centres to their clusters' means, until the
    assignment stops changing or ``iters`` steps. An emptied cluster restarts at the box
    fitted worst.

    Example:
        >>> whs = np.array([[10., 10.], [11., 11.], [50., 20.], [52., 21.]])
        >>> kmeans_anchors(whs, 2)[0].round(1).tolist()
        [[10.5, 10.5], [51.0, 20.5]]
    """
    if not 0 < num_anchors <= len(whs):
        raise ValueError(f"k-means: {num_anchors} anchors for {len(whs)} boxes")
    rng = np.random.default_rng(seed)
    centers = [whs[rng.integers(len(whs))]]
    while len(centers) < num_anchors:
        dist = 1.0 - wh_iou(whs, np.asarray(centers)).max(axis=1)
        weights = dist**2
        total = float(weights.sum())
        pick = rng.choice(len(whs), p=weights / total) if total > 0 else rng.integers(len(whs))
        centers.append(whs[pick])
    anchors = np.asarray(centers, np.float64)
    assignment = np.full(len(whs), -1)
    from tqdm import tqdm

    for _ in tqdm(range(iters), desc="k-means", unit="iter", dynamic_ncols=True):
        ious = wh_iou(whs, anchors)
        new = ious.argmax(axis=1)
        if np.array_equal(new, assignment):
            break
        assignment = new
        for k in range(num_anchors):
            members = whs[assignment == k]
            if len(members):
                anchors[k] = members.mean(axis=0)
            else:
                anchors[k] = whs[ious.max(axis=1).argmin()]
    anchors = _sorted(anchors)
    return anchors, float(wh_iou(whs, anchors).max(axis=1).mean())


def avg_iou_cost(flat_anchors: np.ndarray, whs: np.ndarray) -> float:
    """``1 - mean best IoU`` of ``whs`` with anchors ``[w0, h0, w1, h1, ...]`` (DE's cost)."""
    anchors = np.asarray(flat_anchors, np.float64).reshape(-1, 2)
    return 1.0 - float(wh_iou(whs, anchors).max(axis=1).mean())


def differential_evolution_anchors(
    whs: np.ndarray,
    num_anchors: int,
    input_shape: Sequence[int],
    iters: int = 1000,
    seed: int | None = 0,
    popsize: int = 15,
    tol: float = 1e-4,
) -> tuple[np.ndarray, float]:
    """Anchors by ``scipy.optimize.differential_evolution`` (v2's settings: best1bin,
    mutation 0.5-1, recombination 0.7), each ``w`` in ``[0, W]`` and ``h`` in ``[0, H]``.

    Returns:
        ``(anchors [k, 2] sorted by area, mean best IoU)``.
    """
    try:
        from scipy.optimize import differential_evolution
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "optimize-anchors --algorithm differential_evolution needs scipy "
            "(pip install 'detforge[analysis]' or pip install scipy)"
        ) from exc
    bounds = [(0.0, float(input_shape[0])), (0.0, float(input_shape[1]))] * num_anchors
    result = differential_evolution(
        avg_iou_cost,
        bounds,
        args=(whs,),
        strategy="best1bin",
        maxiter=iters,
        popsize=popsize,
        tol=tol,
        mutation=(0.5, 1.0),
        recombination=0.7,
        updating="immediate",
        seed=seed,
        polish=False,
    )
    anchors = _sorted(np.asarray(result.x, np.float64).reshape(-1, 2))
    return anchors, 1.0 - float(result.fun)


def save_anchors(
    anchors: np.ndarray, output_dir: str | os.PathLike[str], per_level: Sequence[int]
) -> Path:
    """Write v2's ``anchor_optimize_result.json``: ``[[w, h], ...]`` rounded, by area.

    ``per_level`` only checks that the count matches the config's ``base_sizes``.
    """
    if sum(per_level) != len(anchors):
        raise ValueError(f"{len(anchors)} anchors for base_sizes of {list(per_level)} per level")
    path = Path(output_dir) / "anchor_optimize_result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([[round(float(w)), round(float(h))] for w, h in anchors]))
    return path
