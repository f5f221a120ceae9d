"""Level-driven geometric transforms used by ``AutoAugment``: ``Shear``, ``Rotate``, ``Translate``.

Each takes a ``level`` in ``[0, 10]`` mapped to a magnitude ``level / 10 * max`` (negated with
``random_negative_prob``) and applies with probability ``prob``. Boxes become the bounding box
of their warped corners, clipped to the image; masks (fill 0) and seg maps (fill
``seg_ignore_label``) move with the image; boxes of zero size are then dropped together with
their labels and masks. Draws use the global ``np.random`` state.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from detforge.datasets.transforms._utils import (
    Results,
    TransformArgumentError,
    check_arg,
    check_level,
    check_prob,
    level_to_value,
    select_instances,
)
from detforge.registry import TRANSFORMS
from detforge.utils.image import imrotate, imshear, imtranslate

__all__ = ["Rotate", "Shear", "Translate"]


def _random_negative(value: float, prob: float) -> float:
    return -value if np.random.rand() < prob else value


def _fill_value(value: Any, name: str) -> tuple[float, float, float]:
    """``img_fill_val`` as a 3-tuple of floats in [0, 255]."""
    if isinstance(value, (int, float)):
        fill = (float(value),) * 3
    elif isinstance(value, tuple):
        check_arg(len(value) == 3, f"{name}: img_fill_val tuple needs 3 values, got {value!r}")
        fill = (float(value[0]), float(value[1]), float(value[2]))
    else:
        raise TransformArgumentError(
            f"{name}: img_fill_val must be a number or a 3-tuple, got {value!r}"
        )
    check_arg(all(0 <= v <= 255 for v in fill), f"{name}: img_fill_val not in [0, 255]: {fill}")
    return fill


def _warp_boxes(boxes: np.ndarray, matrix: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bounding boxes of the corners of ``boxes`` moved by the 2x3 ``matrix``, clipped to w x h.

    The right/bottom edges are clipped to ``[left/top, w/h]`` so a box warped out of the image
    gets zero size (and is then dropped).
    """
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    xs = np.stack([x1, x2, x1, x2], axis=1)
    ys = np.stack([y1, y1, y2, y2], axis=1)
    new_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    new_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    min_x = np.clip(new_x.min(1), 0, w)
    min_y = np.clip(new_y.min(1), 0, h)
    max_x = np.clip(new_x.max(1), min_x, w)
    max_y = np.clip(new_y.max(1), min_y, h)
    return np.stack([min_x, min_y, max_x, max_y], axis=-1).astype(np.float32)


def _filter_empty(results: Results, min_size: float = 0) -> None:
    """Drop boxes not wider and taller than ``min_size``, with their labels and masks."""
    for key in results.get("bbox_fields", []):
        bboxes = results[key]
        keep = (bboxes[:, 2] - bboxes[:, 0] > min_size) & (bboxes[:, 3] - bboxes[:, 1] > min_size)
        results[key] = bboxes[keep]
        select_instances(results, key, keep)


@TRANSFORMS.register_module()
class Shear:
    """Shear image, boxes, masks and seg maps by ``level / 10 * max_shear_magnitude``.

    Args:
        level: Strength in ``[0, 10]``.
        img_fill_val: Image border fill (number or 3-tuple in [0, 255]).
        seg_ignore_label: Seg map border fill.
        prob: Probability of shearing.
        direction: ``'horizontal'`` (x += m*y) or ``'vertical'`` (y += m*x).
        max_shear_magnitude: Magnitude at level 10, in ``[0, 1]``.
        random_negative_prob: Probability of negating the magnitude.
        interpolation: Interpolation for image and masks (seg maps use nearest).

    Example:
        >>> t = Shear(level=10, prob=1.0, random_negative_prob=0.0)
        >>> r = t({'img': np.zeros((20, 20, 3), np.uint8), 'bbox_fields': ['gt_bboxes'],
        ...        'gt_bboxes': np.array([[0, 0, 5, 10]], np.float32)})
        >>> r['gt_bboxes'].tolist()
        [[0.0, 0.0, 8.0, 10.0]]
    """

    def __init__(
        self,
        level: float,
        img_fill_val: float | tuple[float, float, float] = 128,
        seg_ignore_label: int = 255,
        prob: float = 0.5,
        direction: str = "horizontal",
        max_shear_magnitude: float = 0.3,
        random_negative_prob: float = 0.5,
        interpolation: str = "bilinear",
    ) -> None:
        check_level(level, "Shear")
        check_prob(prob, "Shear")
        check_arg(
            direction in ("horizontal", "vertical"),
            f"Shear: direction must be 'horizontal' or 'vertical', got {direction!r}",
        )
        check_arg(
            isinstance(max_shear_magnitude, float) and 0.0 <= max_shear_magnitude <= 1.0,
            f"Shear: max_shear_magnitude must be a float in [0, 1], got {max_shear_magnitude!r}",
        )
        self.level = level
        self.magnitude = level_to_value(level, max_shear_magnitude)
        self.img_fill_val = _fill_value(img_fill_val, "Shear")
        self.seg_ignore_label = seg_ignore_label
        self.prob = prob
        self.direction = direction
        self.max_shear_magnitude = max_shear_magnitude
        self.random_negative_prob = random_negative_prob
        self.interpolation = interpolation

    def __call__(self, results: Results) -> Results:
        if np.random.rand() > self.prob:
            return results
        magnitude = _random_negative(self.magnitude, self.random_negative_prob)
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            results[key] = imshear(
                img, magnitude, self.direction, self.img_fill_val, self.interpolation
            ).astype(img.dtype)
        h, w = results["img"].shape[:2]
        results["img_shape"] = results["img"].shape
        if self.direction == "horizontal":
            matrix = np.array([[1, magnitude, 0], [0, 1, 0]], dtype=np.float64)
        else:
            matrix = np.array([[1, 0, 0], [magnitude, 1, 0]], dtype=np.float64)
        for key in results.get("bbox_fields", []):
            results[key] = _warp_boxes(np.asarray(results[key]), matrix, h, w)
        for key in results.get("mask_fields", []):
            results[key] = results[key].shear(
                (h, w), magnitude, self.direction, border_value=0, interpolation=self.interpolation
            )
        for key in results.get("seg_fields", []):
            seg = results[key]
            results[key] = imshear(
                seg, magnitude, self.direction, self.seg_ignore_label, "nearest"
            ).astype(seg.dtype)
        _filter_empty(results)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(level={self.level}, img_fill_val={self.img_fill_val}, "
            f"seg_ignore_label={self.seg_ignore_label}, prob={self.prob}, "
            f"direction={self.direction}, max_shear_magnitude={self.max_shear_magnitude}, "
            f"random_negative_prob={self.random_negative_prob}, "
            f"interpolation={self.interpolation})"
        )


@TRANSFORMS.register_module()
class Rotate:
    """Rotate image, boxes, masks and seg maps by ``level / 10 * max_rotate_angle`` degrees.

    Positive angles turn clockwise (like ``imrotate``); the default center is the pixel center
    ``((w - 1) / 2, (h - 1) / 2)``.

    Args:
        level: Strength in ``[0, 10]``.
        scale: Isotropic scale applied with the rotation.
        center: Rotation center ``(x, y)`` (a number means ``(c, c)``); ``None``: image center.
        img_fill_val: Image border fill (number or 3-tuple in [0, 255]).
        seg_ignore_label: Seg map border fill.
        prob: Probability of rotating.
        max_rotate_angle: Angle at level 10, in degrees.
        random_negative_prob: Probability of negating the angle.

    Example:
        >>> t = Rotate(level=10, prob=1.0, max_rotate_angle=90, random_negative_prob=0.0)
        >>> r = t({'img': np.zeros((11, 11, 3), np.uint8), 'bbox_fields': ['gt_bboxes'],
        ...        'gt_bboxes': np.array([[0, 0, 4, 2]], np.float32)})
        >>> np.round(r['gt_bboxes'], 3).tolist()
        [[8.0, 0.0, 10.0, 4.0]]
    """

    def __init__(
        self,
        level: float,
        scale: float = 1,
        center: float | tuple[float, float] | None = None,
        img_fill_val: float | tuple[float, float, float] = 128,
        seg_ignore_label: int = 255,
        prob: float = 0.5,
        max_rotate_angle: float = 30,
        random_negative_prob: float = 0.5,
    ) -> None:
        check_level(level, "Rotate")
        check_arg(isinstance(scale, (int, float)), f"Rotate: scale must be a number, got {scale!r}")
        center_xy: tuple[float, float] | None = None
        if isinstance(center, (int, float)):
            center_xy = (center, center)
        elif isinstance(center, tuple):
            check_arg(len(center) == 2, f"Rotate: center tuple needs 2 values, got {center!r}")
            center_xy = (center[0], center[1])
        else:
            check_arg(
                center is None, f"Rotate: center must be None, a number or (x, y): {center!r}"
            )
        check_prob(prob, "Rotate")
        check_arg(
            isinstance(max_rotate_angle, (int, float)),
            f"Rotate: max_rotate_angle must be a number, got {max_rotate_angle!r}",
        )
        self.level = level
        self.scale = scale
        self.angle = level_to_value(level, max_rotate_angle)
        self.center = center_xy
        self.img_fill_val = _fill_value(img_fill_val, "Rotate")
        self.seg_ignore_label = seg_ignore_label
        self.prob = prob
        self.max_rotate_angle = max_rotate_angle
        self.random_negative_prob = random_negative_prob

    def __call__(self, results: Results) -> Results:
        if np.random.rand() > self.prob:
            return results
        h, w = results["img"].shape[:2]
        center = self.center if self.center is not None else ((w - 1) * 0.5, (h - 1) * 0.5)
        angle = _random_negative(self.angle, self.random_negative_prob)
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            results[key] = imrotate(
                img, angle, center, self.scale, border_value=self.img_fill_val
            ).astype(img.dtype)
        results["img_shape"] = results["img"].shape
        matrix = cv2.getRotationMatrix2D(
            (float(center[0]), float(center[1])), -angle, float(self.scale)
        )
        for key in results.get("bbox_fields", []):
            results[key] = _warp_boxes(np.asarray(results[key]), matrix, h, w)
        for key in results.get("mask_fields", []):
            results[key] = results[key].rotate((h, w), angle, center, self.scale, 0)
        for key in results.get("seg_fields", []):
            seg = results[key]
            results[key] = imrotate(
                seg,
                angle,
                center,
                self.scale,
                border_value=self.seg_ignore_label,
                interpolation="nearest",
            ).astype(seg.dtype)
        _filter_empty(results)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(level={self.level}, scale={self.scale}, "
            f"center={self.center}, img_fill_val={self.img_fill_val}, "
            f"seg_ignore_label={self.seg_ignore_label}, prob={self.prob}, "
            f"max_rotate_angle={self.max_rotate_angle}, "
            f"random_negative_prob={self.random_negative_prob})"
        )


@TRANSFORMS.register_module()
class Translate:
    """Shift image, boxes, masks and seg maps by ``int(level / 10 * max_translate_offset)`` px.

    Args:
        level: Strength in ``[0, 10]``.
        prob: Probability of translating.
        img_fill_val: Image border fill (number or 3-tuple in [0, 255]).
        seg_ignore_label: Seg map border fill.
        direction: ``'horizontal'`` or ``'vertical'``.
        max_translate_offset: Offset at level 10, in pixels.
        random_negative_prob: Probability of negating the offset.
        min_size: Boxes not wider and taller than this are dropped afterwards.

    Example:
        >>> t = Translate(level=10, prob=1.0, max_translate_offset=5, random_negative_prob=0.0)
        >>> r = t({'img': np.zeros((10, 10, 3), np.uint8), 'bbox_fields': ['gt_bboxes'],
        ...        'gt_bboxes': np.array([[1, 1, 4, 4], [6, 1, 9, 4]], np.float32),
        ...        'gt_labels': np.array([0, 1])})
        >>> r['gt_bboxes'].tolist(), r['gt_labels'].tolist()
        ([[6.0, 1.0, 9.0, 4.0]], [0])
    """

    def __init__(
        self,
        level: float,
        prob: float = 0.5,
        img_fill_val: float | tuple[float, float, float] = 128,
        seg_ignore_label: int = 255,
        direction: str = "horizontal",
        max_translate_offset: float = 250.0,
        random_negative_prob: float = 0.5,
        min_size: float = 0,
    ) -> None:
        check_level(level, "Translate")
        check_prob(prob, "Translate")
        check_arg(
            direction in ("horizontal", "vertical"),
            f"Translate: direction must be 'horizontal' or 'vertical', got {direction!r}",
        )
        check_arg(
            isinstance(max_translate_offset, (int, float)),
            f"Translate: max_translate_offset must be a number, got {max_translate_offset!r}",
        )
        self.offset = int(level_to_value(level, max_translate_offset))
        self.level = level
        self.prob = prob
        self.img_fill_val = _fill_value(img_fill_val, "Translate")
        self.seg_ignore_label = seg_ignore_label
        self.direction = direction
        self.max_translate_offset = max_translate_offset
        self.random_negative_prob = random_negative_prob
        self.min_size = min_size

    def __call__(self, results: Results) -> Results:
        if np.random.rand() > self.prob:
            return results
        offset = _random_negative(self.offset, self.random_negative_prob)
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            results[key] = imtranslate(img, offset, self.direction, self.img_fill_val).astype(
                img.dtype
            )
        h, w = results["img"].shape[:2]
        results["img_shape"] = results["img"].shape
        for key in results.get("bbox_fields", []):
            bboxes = np.array(results[key], dtype=np.float32).reshape(-1, 4)
            if self.direction == "horizontal":
                bboxes[:, 0] = np.maximum(0, bboxes[:, 0] + offset)
                bboxes[:, 2] = np.minimum(w, bboxes[:, 2] + offset)
            else:
                bboxes[:, 1] = np.maximum(0, bboxes[:, 1] + offset)
                bboxes[:, 3] = np.minimum(h, bboxes[:, 3] + offset)
            results[key] = bboxes
        for key in results.get("mask_fields", []):
            results[key] = results[key].translate((h, w), offset, self.direction, 0)
        for key in results.get("seg_fields", []):
            seg = results[key]
            results[key] = imtranslate(
                seg, offset, self.direction, self.seg_ignore_label, "nearest"
            ).astype(seg.dtype)
        _filter_empty(results, self.min_size)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(level={self.level}, prob={self.prob}, "
            f"img_fill_val={self.img_fill_val}, seg_ignore_label={self.seg_ignore_label}, "
            f"direction={self.direction}, max_translate_offset={self.max_translate_offset}, "
            f"random_negative_prob={self.random_negative_prob}, min_size={self.min_size})"
        )
