"""Best and worst test images by per-image mAP (v2's ``analyze_results.py`` ResultVisualizer).

Each image's detections are scored with v2's ``bbox_map_eval``: the VOC-style mAP of that image
alone, averaged over the IoU thresholds 0.50, 0.55, ..., 0.95. The ``topk`` best go to
``SHOW_DIR/good`` and the ``topk`` worst to ``SHOW_DIR/bad``, each file named
``<stem>_<round(mAP, 3)><ext>`` with GT and predictions drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detforge.analysis.results import bbox_results, draw_gt_and_dets, loading_pipeline

__all__ = [
    "bbox_map_eval",
    "per_image_map",
    "save_ranked_images",
    "select_topk",
    "train_loading_pipeline",
]

_IOU_THRS = np.linspace(0.5, 0.95, 10)


def bbox_map_eval(det_result: Any, annotation: Mapping[str, Any]) -> float:
    """mAP of one image's detections against its annotation, averaged over IoU .50:.05:.95.

    Args:
        det_result: One v2 result (list over classes of ``[n, 5]``, or ``(bbox, segm)``).
        annotation: ``dataset.get_ann_info(i)``: ``bboxes``, ``labels`` (and ``*_ignore``).

    Example:
        >>> ann = dict(bboxes=np.array([[0, 0, 10, 10]], np.float32), labels=np.array([0]))
        >>> bbox_map_eval([np.array([[0, 0, 10, 10, 0.9]], np.float32)], ann)
        1.0
    """
    from detforge.evaluation.mean_ap import eval_map

    dets = bbox_results([det_result])
    aps = [
        eval_map(dets, [dict(annotation)], iou_thr=float(thr), logger="silent", nproc=1)[0]
        for thr in _IOU_THRS
    ]
    return float(sum(aps) / len(aps))


def train_loading_pipeline(cfg: Any) -> list[Any]:
    """The loading steps of the innermost ``data.train`` pipeline (v2's analyze_results).

    Dataset wrappers (``MultiImageMixDataset``, ``RepeatDataset``, ``ClassBalancedDataset``)
    are descended through their ``dataset`` key: a wrapper's own pipeline (mosaic, mixup)
    loads nothing. A train set without a pipeline falls back to ``data.test.pipeline``.

    Raises:
        ValueError: the pipeline has no ``LoadImageFromFile``/``LoadAnnotations`` step.

    Example:
        >>> from detforge.config import ConfigDict
        >>> load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
        >>> inner = dict(type='CocoDataset', pipeline=load + [dict(type='RandomFlip')])
        >>> train = dict(type='MultiImageMixDataset', dataset=inner,
        ...              pipeline=[dict(type='Mosaic', img_scale=(640, 640))])
        >>> cfg = ConfigDict(data=dict(train=train, test=dict(pipeline=[])))
        >>> [step['type'] for step in train_loading_pipeline(cfg)]
        ['LoadImageFromFile', 'LoadAnnotations']
    """
    train, where = cfg.data.train, "data.train"
    while isinstance(train, Mapping) and "dataset" in train:
        train, where = train["dataset"], f"{where}.dataset"
    source = train.get("pipeline") if isinstance(train, Mapping) else None
    if not source:
        source, where = cfg.data.test.pipeline, "data.test"
    steps = loading_pipeline(source)
    if not steps:
        kinds = [step.get("type") for step in source if isinstance(step, Mapping)]
        raise ValueError(
            f"{where}.pipeline has no loading step (LoadImageFromFile/LoadAnnotations) to "
            f"read images and GT with: {kinds}"
        )
    return steps


def per_image_map(dataset: Any, results: Sequence[Any]) -> list[float]:
    """:func:`bbox_map_eval` of every image (annotations from ``dataset.get_ann_info``)."""
    from tqdm import tqdm

    boxes = bbox_results(results)
    return [
        bbox_map_eval(boxes[i], dataset.get_ann_info(i))
        for i in tqdm(range(len(boxes)), desc="per-image mAP", unit="img", dynamic_ncols=True)
    ]


def select_topk(
    maps: Sequence[float], topk: int = 20
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """``(good, bad)``: the ``topk`` highest and lowest ``(index, mAP)``, as v2 picks them.

    ``topk`` is cut to half the number of images; both lists are in ascending mAP order (ties
    by index).

    Example:
        >>> select_topk([0.5, 0.1, 0.9, 0.3], topk=1)
        ([(2, 0.9)], [(1, 0.1)])
    """
    if topk <= 0:
        raise ValueError(f"topk must be positive, got {topk}")
    topk = min(topk, len(maps) // 2)
    ranked = sorted(enumerate(maps), key=lambda kv: kv[1])
    if topk == 0:
        return [], []
    return ranked[-topk:], ranked[:topk]


def save_ranked_images(
    dataset: Any,
    results: Sequence[Any],
    ranked: Sequence[tuple[int, float]],
    out_dir: str | os.PathLike[str],
    score_thr: float = 0.0,
    overlay_gt_pred: bool = False,
    show: bool = False,
    wait_time: float = 0,
) -> list[Path]:
    """Draw GT and predictions of each ``(index, mAP)`` into ``out_dir/<stem>_<mAP><ext>``.

    ``dataset`` must run a loading-only pipeline (images and GT in the original frame).
    """
    import cv2

    from detforge.utils.image import imwrite

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, score in ranked:
        data = dataset.prepare_train_img(index)
        if data is None:
            raise ValueError(f"the loading pipeline returned nothing for image {index}")
        name = os.path.basename(data.get("ori_filename") or data["filename"])
        stem, ext = os.path.splitext(name)
        path = out / f"{stem}_{round(score, 3)}{ext}"
        drawn = draw_gt_and_dets(
            data["img"],
            data,
            results[index],
            dataset.CLASSES,
            score_thr=score_thr,
            palette=getattr(dataset, "PALETTE", None),
            overlay=overlay_gt_pred,
        )
        if show:
            cv2.imshow("analyze-results", drawn)
            cv2.waitKey(int(wait_time * 1000))
        imwrite(drawn, path)
        written.append(path)
    return written
