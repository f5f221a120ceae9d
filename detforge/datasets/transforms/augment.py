"""Expand, shift and cut-out transforms of the v2 pipeline.

Each transform reads and returns the v2 ``results`` dict (keys in :mod:`detforge.structures`);
boxes listed in ``bbox_fields`` move with the image, and the labels and masks paired with them
keep the same instances. Random draws come from the global ``np.random`` state in MMDetection
v2's order. The crop transforms live in :mod:`detforge.datasets.transforms.crop`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np

from detforge.datasets.transforms._utils import (
    Results,
    bbox_array,
    check_arg,
    check_single_img_field,
    select_instances,
)
from detforge.registry import TRANSFORMS

__all__ = ["CutOut", "Expand", "RandomShift"]


@TRANSFORMS.register_module()
class Expand:
    """Paste the image at a random place on a larger canvas filled with the mean (SSD).

    Args:
        mean: Fill value per channel, given in RGB order when ``to_rgb`` (reversed to BGR).
        to_rgb: Whether ``mean`` is in RGB order.
        ratio_range: ``(min, max)`` canvas-to-image side ratio, ``1 <= min <= max``.
        seg_ignore_label: Fill value of seg maps (required when ``seg_fields`` is not empty).
        prob: Probability of expanding.

    Example:
        >>> np.random.seed(0)
        >>> r = Expand(ratio_range=(2, 2), prob=1.0)({'img': np.ones((10, 20, 3), np.uint8)})
        >>> r['img'].shape
        (20, 40, 3)
    """

    def __init__(
        self,
        mean: Sequence[float] = (0, 0, 0),
        to_rgb: bool = True,
        ratio_range: Sequence[float] = (1, 4),
        seg_ignore_label: int | None = None,
        prob: float = 0.5,
    ) -> None:
        check_arg(
            len(ratio_range) == 2 and 1 <= ratio_range[0] <= ratio_range[1],
            f"Expand: ratio_range must be (min, max) with 1 <= min <= max, got {ratio_range!r}",
        )
        check_arg(0 <= prob <= 1, f"Expand: prob must be in [0, 1], got {prob}")
        self.to_rgb = to_rgb
        self.ratio_range = ratio_range
        self.mean = mean[::-1] if to_rgb else mean
        self.min_ratio, self.max_ratio = ratio_range
        self.seg_ignore_label = seg_ignore_label
        self.prob = prob

    def __call__(self, results: Results) -> Results:
        if np.random.uniform(0, 1) > self.prob:
            return results
        check_single_img_field(results, "Expand")
        img = results["img"]
        h, w = img.shape[:2]
        ratio = np.random.uniform(self.min_ratio, self.max_ratio)
        out_h, out_w = int(h * ratio), int(w * ratio)
        canvas = np.empty((out_h, out_w, *img.shape[2:]), img.dtype)
        canvas[...] = np.asarray(self.mean)
        left = int(np.random.uniform(0, w * ratio - w))
        top = int(np.random.uniform(0, h * ratio - h))
        canvas[top : top + h, left : left + w] = img
        results["img"] = canvas
        results["img_shape"] = canvas.shape
        shift = np.array([left, top, left, top], dtype=np.float32)
        for key in results.get("bbox_fields", []):
            results[key] = bbox_array(results, key) + shift
        for key in results.get("mask_fields", []):
            results[key] = results[key].expand(out_h, out_w, top, left)
        for key in results.get("seg_fields", []):
            check_arg(
                self.seg_ignore_label is not None,
                f"Expand: seg_ignore_label is None but seg field {key!r} must be filled",
            )
            seg = np.full((out_h, out_w), self.seg_ignore_label, dtype=results[key].dtype)
            seg[top : top + h, left : left + w] = results[key]
            results[key] = seg
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mean={self.mean}, to_rgb={self.to_rgb}, "
            f"ratio_range={self.ratio_range}, seg_ignore_label={self.seg_ignore_label})"
        )


def _shift_array(arr: np.ndarray, dx: int, dy: int, fill: float) -> np.ndarray:
    """``arr`` moved right by ``dx`` and down by ``dy`` pixels; uncovered pixels get ``fill``."""
    h, w = arr.shape[:2]
    out = np.full_like(arr, fill)
    new_h, new_w = h - abs(dy), w - abs(dx)
    if new_h > 0 and new_w > 0:
        dst_y, dst_x, src_y, src_x = max(0, dy), max(0, dx), max(0, -dy), max(0, -dx)
        out[dst_y : dst_y + new_h, dst_x : dst_x + new_w] = arr[
            src_y : src_y + new_h, src_x : src_x + new_w
        ]
    return out


@TRANSFORMS.register_module()
class RandomShift:
    """Shift the image and boxes by up to ``max_shift_px`` pixels; empty borders become 0.

    Boxes are clipped; boxes not wider and taller than ``filter_thr_px`` are dropped with their
    labels and masks. When no ``gt_bboxes`` would remain, the sample is returned unshifted.
    Masks (fill 0) and seg maps (fill 255) are shifted too, which v2 left undone.

    Args:
        shift_ratio: Probability of shifting.
        max_shift_px: Largest shift in pixels (drawn from ``[-max, max)``).
        filter_thr_px: Width/height threshold for keeping boxes.

    Example:
        >>> np.random.seed(0)
        >>> r = RandomShift(shift_ratio=1.0)({'img': np.ones((64, 64, 3), np.uint8),
        ...     'bbox_fields': ['gt_bboxes'], 'gt_bboxes': np.array([[8, 8, 56, 56]], np.float32)})
        >>> r['img'].shape
        (64, 64, 3)
    """

    def __init__(
        self, shift_ratio: float = 0.5, max_shift_px: int = 32, filter_thr_px: int = 1
    ) -> None:
        check_arg(0 <= shift_ratio <= 1, f"RandomShift: shift_ratio not in [0, 1]: {shift_ratio}")
        check_arg(max_shift_px >= 0, f"RandomShift: max_shift_px must be >= 0: {max_shift_px}")
        self.shift_ratio = shift_ratio
        self.max_shift_px = max_shift_px
        self.filter_thr_px = int(filter_thr_px)

    def __call__(self, results: Results) -> Results:
        if np.random.random() >= self.shift_ratio:
            return results
        img_h, img_w = results["img"].shape[:2]
        dx = int(np.random.randint(-self.max_shift_px, self.max_shift_px))
        dy = int(np.random.randint(-self.max_shift_px, self.max_shift_px))
        shifted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key in results.get("bbox_fields", []):
            bboxes = bbox_array(results, key)
            bboxes[:, 0::2] = np.clip(bboxes[:, 0::2] + dx, 0, img_w)
            bboxes[:, 1::2] = np.clip(bboxes[:, 1::2] + dy, 0, img_h)
            valid = (bboxes[:, 2] - bboxes[:, 0] > self.filter_thr_px) & (
                bboxes[:, 3] - bboxes[:, 1] > self.filter_thr_px
            )
            if key == "gt_bboxes" and not valid.any():
                return results
            shifted[key] = (bboxes[valid], valid)
        for key, (bboxes, valid) in shifted.items():
            results[key] = bboxes
            select_instances(results, key, valid)
        for key in results.get("mask_fields", []):
            masks = results[key].translate((img_h, img_w), dx, direction="horizontal")
            results[key] = masks.translate((img_h, img_w), dy, direction="vertical")
        for key in results.get("img_fields", ["img"]):
            results[key] = _shift_array(results[key], dx, dy, 0)
        for key in results.get("seg_fields", []):
            results[key] = _shift_array(results[key], dx, dy, 255)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(shift_ratio={self.shift_ratio}, "
            f"max_shift_px={self.max_shift_px}, filter_thr_px={self.filter_thr_px})"
        )


def _as_candidates(value: Any, name: str) -> list[tuple[float, float]]:
    """``(a, b)`` or a list of such pairs -> list of pairs."""
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, Real) for v in value):
        return [(value[0], value[1])]
    check_arg(
        isinstance(value, Sequence)
        and len(value) > 0
        and all(isinstance(v, Sequence) and len(v) == 2 for v in value),
        f"CutOut: {name} must be a pair or a list of pairs, got {value!r}",
    )
    return [(v[0], v[1]) for v in value]


@TRANSFORMS.register_module()
class CutOut:
    """Fill random rectangles of the image with ``fill_in`` (Cutout).

    Args:
        n_holes: Number of holes, or ``(min, max)`` to draw it from (inclusive).
        cutout_shape: Hole ``(w, h)`` in pixels, or a list to choose from.
        cutout_ratio: Hole ``(w, h)`` as fractions of the image, or a list to choose from.
            Give exactly one of ``cutout_shape`` and ``cutout_ratio``.
        fill_in: Pixel value written into the holes.

    Example:
        >>> np.random.seed(0)
        >>> r = CutOut(n_holes=1, cutout_shape=(4, 4))({'img': np.ones((8, 8, 3), np.uint8)})
        >>> int((r['img'] == 0).any())
        1
    """

    def __init__(
        self,
        n_holes: int | Sequence[int],
        cutout_shape: Sequence[Any] | None = None,
        cutout_ratio: Sequence[Any] | None = None,
        fill_in: Sequence[float] | float = (0, 0, 0),
    ) -> None:
        check_arg(
            (cutout_shape is None) ^ (cutout_ratio is None),
            "CutOut: give exactly one of cutout_shape and cutout_ratio",
        )
        if isinstance(n_holes, Sequence):
            check_arg(
                len(n_holes) == 2 and 0 <= n_holes[0] < n_holes[1],
                f"CutOut: n_holes range must be (min, max) with 0 <= min < max, got {n_holes!r}",
            )
            self.n_holes = (int(n_holes[0]), int(n_holes[1]))
        else:
            self.n_holes = (int(n_holes), int(n_holes))
        self.fill_in = fill_in
        self.with_ratio = cutout_ratio is not None
        if cutout_ratio is not None:
            self.candidates = _as_candidates(cutout_ratio, "cutout_ratio")
        else:
            self.candidates = _as_candidates(cutout_shape, "cutout_shape")

    def __call__(self, results: Results) -> Results:
        img = results["img"].copy()
        h, w = img.shape[:2]
        n_holes = np.random.randint(self.n_holes[0], self.n_holes[1] + 1)
        for _ in range(n_holes):
            x1 = np.random.randint(0, w)
            y1 = np.random.randint(0, h)
            cand = self.candidates[np.random.randint(0, len(self.candidates))]
            if self.with_ratio:
                cut_w, cut_h = int(cand[0] * w), int(cand[1] * h)
            else:
                cut_w, cut_h = int(cand[0]), int(cand[1])
            x2 = int(np.clip(x1 + cut_w, 0, w))
            y2 = int(np.clip(y1 + cut_h, 0, h))
            img[y1:y2, x1:x2, ...] = self.fill_in
        results["img"] = img
        return results

    def __repr__(self) -> str:
        kind = "cutout_ratio" if self.with_ratio else "cutout_shape"
        return (
            f"{type(self).__name__}(n_holes={self.n_holes}, {kind}={self.candidates}, "
            f"fill_in={self.fill_in})"
        )
