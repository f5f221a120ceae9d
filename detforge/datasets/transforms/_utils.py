"""Helpers shared by the v2 pipeline transforms: argument checks and instance bookkeeping.

Boxes listed in ``bbox_fields`` carry paired per-instance keys (``gt_bboxes`` ↔
``gt_labels``/``gt_masks``, ``gt_bboxes_ignore`` ↔ ``gt_labels_ignore``/``gt_masks_ignore``);
:func:`select_instances` keeps those aligned when a transform drops boxes. The level helpers
map the ``level`` in ``[0, 10]`` of the AutoAugment transforms to a magnitude as v2 does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detforge.errors import InvalidArgumentError

__all__ = [
    "BBOX2LABEL",
    "BBOX2MASK",
    "Results",
    "TransformArgumentError",
    "bbox_array",
    "centers_inside",
    "check_arg",
    "check_level",
    "check_prob",
    "check_single_img_field",
    "enhance_level_to_value",
    "level_to_value",
    "select_instances",
]

Results = dict[str, Any]

#: The label and mask keys that are aligned, instance by instance, with each box key.
BBOX2LABEL = {"gt_bboxes": "gt_labels", "gt_bboxes_ignore": "gt_labels_ignore"}
BBOX2MASK = {"gt_bboxes": "gt_masks", "gt_bboxes_ignore": "gt_masks_ignore"}

#: The largest ``level`` of the level-driven (AutoAugment) transforms.
_MAX_LEVEL = 10


class TransformArgumentError(InvalidArgumentError):
    """A transform got an argument it cannot use (also an ``AssertionError``, as v2 asserted)."""


def check_arg(condition: bool, message: str) -> None:
    """Raise :class:`TransformArgumentError` with ``message`` unless ``condition`` holds.

    Example:
        >>> check_arg(1 < 2, 'never shown')
    """
    if not condition:
        raise TransformArgumentError(message)


def select_instances(results: Results, bbox_key: str, keep: np.ndarray) -> None:
    """Keep the instances ``keep`` of the labels and masks paired with ``bbox_key``.

    Args:
        results: The results dict, edited in place (the boxes themselves are not touched).
        bbox_key: A box key such as ``'gt_bboxes'``.
        keep: Boolean mask ``ndarray[N]`` or integer indices of the instances to keep.

    Example:
        >>> r = {'gt_labels': np.array([3, 4, 5])}
        >>> select_instances(r, 'gt_bboxes', np.array([True, False, True]))
        >>> r['gt_labels']
        array([3, 5])
    """
    keep = np.asarray(keep)
    inds = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
    label_key = BBOX2LABEL.get(bbox_key)
    if label_key is not None and label_key in results:
        results[label_key] = results[label_key][inds]
    mask_key = BBOX2MASK.get(bbox_key)
    if mask_key is not None and mask_key in results:
        results[mask_key] = results[mask_key][inds]


def bbox_array(results: Results, key: str) -> np.ndarray:
    """``results[key]`` as a float32 ``ndarray[N, 4]`` (a copy)."""
    return np.array(results[key], dtype=np.float32).reshape(-1, 4)


def centers_inside(boxes: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """Which boxes have their center strictly inside ``patch`` (x1, y1, x2, y2)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return (cx > patch[0]) & (cy > patch[1]) & (cx < patch[2]) & (cy < patch[3])


def check_single_img_field(results: Results, name: str) -> None:
    """Raise :class:`TransformArgumentError` unless ``img_fields`` is just ``['img']``."""
    if "img_fields" in results and list(results["img_fields"]) != ["img"]:
        raise TransformArgumentError(
            f"{name} handles only img_fields == ['img'], got {results['img_fields']!r}"
        )


def level_to_value(level: float, max_value: float) -> float:
    """The magnitude of ``level`` (0..10) on a scale ending at ``max_value``.

    Example:
        >>> level_to_value(5, 30)
        15.0
    """
    return (level / _MAX_LEVEL) * max_value


def enhance_level_to_value(level: float, a: float = 1.8, b: float = 0.1) -> float:
    """The enhancement factor of ``level``: ``level / 10 * a + b`` (0.1 .. 1.9).

    Example:
        >>> round(enhance_level_to_value(5), 6)
        1.0
    """
    return (level / _MAX_LEVEL) * a + b


def check_level(level: Any, name: str) -> None:
    """Check that ``level`` is a number in ``[0, 10]`` (``name`` is the transform)."""
    check_arg(
        isinstance(level, (int, float)) and not isinstance(level, bool),
        f"{name}: level must be an int or float, got {type(level).__name__}",
    )
    check_arg(0 <= level <= _MAX_LEVEL, f"{name}: level must be in [0, {_MAX_LEVEL}], got {level}")


def check_prob(prob: float, name: str) -> None:
    """Check that ``prob`` is in ``[0, 1]`` (``name`` is the transform)."""
    check_arg(0 <= prob <= 1.0, f"{name}: prob must be in [0, 1], got {prob}")
