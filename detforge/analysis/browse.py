"""Draw the ground truth as the model sees it: after the training pipeline (v2's
``tools/misc/browse_dataset.py``).

The training dataset of the config is built with the pipeline steps named in ``skip_type``
removed (by default ``DefaultFormatBundle``, ``Normalize`` and ``Collect``, so the image is
still ``uint8`` BGR and the annotations are arrays); every sample is drawn with its boxes,
labels and masks as resizing, flipping, cropping and the other augmentations left them.
Wrappers (``RepeatDataset``, ``ClassBalancedDataset``, ``ConcatDataset``) are looked through to
the datasets whose pipelines are edited; ``MultiImageMixDataset`` keeps its own pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SKIP", "browse_dataset", "skip_pipeline_steps"]

DEFAULT_SKIP = ("DefaultFormatBundle", "Normalize", "Collect")


def _step_name(step: Any) -> str:
    kind = step.get("type") if isinstance(step, Mapping) else None
    return kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))


def _innermost(dataset_cfg: Any) -> Iterator[MutableMapping[str, Any]]:
    if isinstance(dataset_cfg, list | tuple):
        for cfg in dataset_cfg:
            yield from _innermost(cfg)
        return
    if dataset_cfg.get("type") == "ConcatDataset" or (
        "datasets" in dataset_cfg and "pipeline" not in dataset_cfg
    ):
        yield from _innermost(dataset_cfg["datasets"])
    elif "dataset" in dataset_cfg and dataset_cfg.get("type") != "MultiImageMixDataset":
        yield from _innermost(dataset_cfg["dataset"])
    else:
        yield dataset_cfg


def skip_pipeline_steps(train_cfg: Any, skip_type: Sequence[str] = DEFAULT_SKIP) -> list[str]:
    """Remove the ``skip_type`` steps from every pipeline of ``train_cfg`` in place.

    Returns the names of the steps that remain in the (first) pipeline.

    Example:
        >>> cfg = dict(type='RepeatDataset', times=2, dataset=dict(type='CocoDataset', pipeline=[
        ...     dict(type='LoadImageFromFile'), dict(type='Normalize'), dict(type='Collect')]))
        >>> skip_pipeline_steps(cfg)
        ['LoadImageFromFile']
    """
    remaining: list[str] | None = None
    for cfg in _innermost(train_cfg):
        if "pipeline" not in cfg:
            raise KeyError(f"dataset config {cfg.get('type')!r} has no 'pipeline' to browse")
        cfg["pipeline"] = [s for s in cfg["pipeline"] if _step_name(s) not in set(skip_type)]
        if remaining is None:
            remaining = [_step_name(s) for s in cfg["pipeline"]]
    return remaining or []


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):  # a tensor left by a formatting step that was not skipped
        value = value.detach().cpu().numpy()
    return value


def _image(item: Mapping[str, Any]) -> np.ndarray:
    img = _to_numpy(item["img"])
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        raise ValueError(
            "browse-dataset: the pipeline turned 'img' into "
            f"{type(img).__name__} {getattr(img, 'shape', '')}; skip the formatting steps "
            "(--skip-type DefaultFormatBundle Normalize Collect ...)"
        )
    if img.shape[0] in (1, 3) and img.shape[2] not in (1, 3):  # CHW from ImageToTensor
        img = img.transpose(1, 2, 0)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _masks(item: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
    masks = item.get("gt_masks")
    if masks is None:
        return None
    masks = _to_numpy(masks)
    array = masks.to_ndarray() if hasattr(masks, "to_ndarray") else np.asarray(masks)
    if not len(array):
        return None
    if array.shape[1:] != shape:
        raise ValueError(f"gt_masks of shape {array.shape[1:]} on an image of shape {shape}")
    return array.astype(bool)


def browse_dataset(
    dataset: Any,
    output_dir: str | os.PathLike[str] | None = None,
    show: bool = False,
    show_interval: float = 2.0,
    limit: int | None = None,
) -> list[Path]:
    """Draw every sample of ``dataset`` (a train dataset whose pipeline keeps numpy output).

    Args:
        dataset: The dataset (``len`` and indexing give pipeline results).
        output_dir: Write ``output_dir/<image file name>`` for each sample (if given).
        show: Show each drawing in a window for ``show_interval`` seconds.
        show_interval: Seconds per image when shown.
        limit: Draw at most this many samples.

    Returns:
        The files written.
    """
    import cv2
    from tqdm import tqdm

    from detforge.utils.image import imwrite
    from detforge.visualization.draw import draw_det_bboxes

    classes = getattr(dataset, "CLASSES", None)
    palette = getattr(dataset, "PALETTE", None)
    total = len(dataset) if limit is None else min(limit, len(dataset))
    written: list[Path] = []
    for index in tqdm(range(total), desc="browse", unit="img", dynamic_ncols=True):
        item = dataset[index]
        img = _image(item)
        bboxes = np.asarray(_to_numpy(item.get("gt_bboxes", np.zeros((0, 4)))), np.float32)
        labels = np.asarray(_to_numpy(item.get("gt_labels", np.zeros(0))), np.int64)
        drawn = draw_det_bboxes(
            img,
            bboxes.reshape(-1, 4),
            labels.reshape(-1),
            _masks(item, img.shape[:2]),
            class_names=classes,
            bbox_color=palette,
            text_color=(200, 200, 200),
            mask_color=palette,
        )
        if output_dir is not None:
            name = Path(str(item.get("ori_filename") or item.get("filename") or index)).name
            path = Path(output_dir) / name
            if not path.suffix:
                path = path.with_suffix(".jpg")
            imwrite(drawn, path)
            written.append(path)
        if show:
            cv2.imshow("browse-dataset", drawn)
            cv2.waitKey(max(1, int(show_interval * 1000)))
    return written
