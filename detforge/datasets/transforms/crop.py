"""Crop transforms of the v2 pipeline: RandomCrop, MinIoURandomCrop and RandomCenterCropPad.

Each transform reads and returns the v2 ``results`` dict (keys in :mod:`detforge.structures`);
boxes listed in ``bbox_fields`` move with the image, and the labels and masks paired with them
keep the same instances (see :func:`~detforge.datasets.transforms._utils.select_instances`).
Random draws come from the global ``np.random`` state in MMDetection v2's order, so
``np.random.seed(s)`` reproduces v2's crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np

from detforge.datasets.transforms._utils import (
    BBOX2MASK,
    Results,
    bbox_array,
    centers_inside,
    check_arg,
    check_single_img_field,
    select_instances,
)
from detforge.evaluation.overlaps import bbox_overlaps_np
from detforge.registry import TRANSFORMS

__all__ = ["MinIoURandomCrop", "RandomCenterCropPad", "RandomCrop"]

_CROP_TYPES = ("relative_range", "relative", "absolute", "absolute_range")


@TRANSFORMS.register_module()
class RandomCrop:
    """Crop a random window from the image; boxes, masks and seg maps follow it.

    Args:
        crop_size: ``(h, w)``: pixels for the ``absolute*`` types, ratios in ``(0, 1]`` otherwise.
        crop_type: ``'absolute'`` crops ``min(crop_size, image)``; ``'absolute_range'`` draws
            the height and the width from ``[crop_size[0], min(side, crop_size[1])]``;
            ``'relative'`` crops ``(h * crop_size[0], w * crop_size[1])``; ``'relative_range'``
            draws the ratios from ``[crop_size[i], 1]``.
        allow_negative_crop: Keep a crop with no ``gt_bboxes`` left; otherwise return ``None``.
        recompute_bbox: Replace the boxes by the boxes of the cropped masks.
        bbox_clip_border: Clip boxes to the crop.

    Example:
        >>> np.random.seed(0)
        >>> t = RandomCrop(crop_size=(20, 30))
        >>> r = t({'img': np.zeros((40, 50, 3), np.uint8), 'bbox_fields': ['gt_bboxes'],
        ...        'gt_bboxes': np.array([[0, 0, 50, 40]], np.float32),
        ...        'gt_labels': np.array([1])})
        >>> r['img'].shape, r['gt_bboxes'].tolist()
        ((20, 30, 3), [[0.0, 0.0, 30.0, 20.0]])
    """

    def __init__(
        self,
        crop_size: Sequence[float],
        crop_type: str = "absolute",
        allow_negative_crop: bool = False,
        recompute_bbox: bool = False,
        bbox_clip_border: bool = True,
    ) -> None:
        if crop_type not in _CROP_TYPES:
            raise ValueError(f"RandomCrop: invalid crop_type {crop_type!r}; one of {_CROP_TYPES}")
        absolute = crop_type in ("absolute", "absolute_range")
        ok = len(crop_size) == 2 and all(
            (isinstance(s, Integral) and not isinstance(s, bool) and s > 0)
            if absolute
            else (0 < s <= 1)
            for s in crop_size
        )
        if ok and crop_type == "absolute_range":
            ok = crop_size[0] <= crop_size[1]
        what = "positive ints (h, w)" if absolute else "an (h, w) of ratios in (0, 1]"
        check_arg(ok, f"RandomCrop: crop_size must be {what} for {crop_type!r}, got {crop_size!r}")
        self.crop_size = crop_size
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border

    def _get_crop_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The absolute ``(crop_h, crop_w)`` for an image of ``(h, w)``."""
        h, w = image_size
        if self.crop_type == "absolute":
            return min(int(self.crop_size[0]), h), min(int(self.crop_size[1]), w)
        if self.crop_type == "absolute_range":
            lo, hi = int(self.crop_size[0]), int(self.crop_size[1])
            crop_h = np.random.randint(min(h, lo), min(h, hi) + 1)
            crop_w = np.random.randint(min(w, lo), min(w, hi) + 1)
            return int(crop_h), int(crop_w)
        if self.crop_type == "relative":
            rel_h, rel_w = self.crop_size
        else:
            size = np.asarray(self.crop_size, dtype=np.float32)
            rel_h, rel_w = size + np.random.rand(2) * (1 - size)
        return int(h * rel_h + 0.5), int(w * rel_w + 0.5)

    def _crop_data(
        self, results: Results, crop_size: tuple[int, int], allow_negative_crop: bool
    ) -> Results | None:
        """Crop everything to a random window of ``crop_size`` (``(h, w)``)."""
        crop_h, crop_w = crop_size
        check_arg(crop_h > 0 and crop_w > 0, f"RandomCrop: empty crop size {crop_size}")
        img_h, img_w = results["img"].shape[:2]
        offset_h = np.random.randint(0, max(img_h - crop_h, 0) + 1)
        offset_w = np.random.randint(0, max(img_w - crop_w, 0) + 1)
        y1, y2 = offset_h, offset_h + crop_h
        x1, x2 = offset_w, offset_w + crop_w
        for key in results.get("img_fields", ["img"]):
            results[key] = results[key][y1:y2, x1:x2, ...]
        img_shape = results["img"].shape
        results["img_shape"] = img_shape

        shift = np.array([offset_w, offset_h, offset_w, offset_h], dtype=np.float32)
        for key in results.get("bbox_fields", []):
            bboxes = bbox_array(results, key) - shift
            if self.bbox_clip_border:
                bboxes[:, 0::2] = np.clip(bboxes[:, 0::2], 0, img_shape[1])
                bboxes[:, 1::2] = np.clip(bboxes[:, 1::2], 0, img_shape[0])
            valid = (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
            if key == "gt_bboxes" and not valid.any() and not allow_negative_crop:
                return None
            results[key] = bboxes[valid]
            select_instances(results, key, valid)
            mask_key = BBOX2MASK.get(key)
            if mask_key is not None and mask_key in results:
                results[mask_key] = results[mask_key].crop(np.asarray([x1, y1, x2, y2]))
                if self.recompute_bbox:
                    results[key] = np.asarray(results[mask_key].get_bboxes(), dtype=np.float32)

        for key in results.get("seg_fields", []):
            results[key] = results[key][y1:y2, x1:x2]
        return results

    def __call__(self, results: Results) -> Results | None:
        crop_size = self._get_crop_size(results["img"].shape[:2])
        return self._crop_data(results, crop_size, self.allow_negative_crop)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, crop_type={self.crop_type}, "
            f"allow_negative_crop={self.allow_negative_crop}, "
            f"bbox_clip_border={self.bbox_clip_border})"
        )


@TRANSFORMS.register_module()
class MinIoURandomCrop:
    """SSD-style crop: every box overlaps the crop with IoU at least a randomly chosen threshold.

    A mode is drawn from ``(1, *min_ious, 0)``; mode 1 returns the input unchanged. Otherwise up
    to 50 windows (sides in ``[min_crop_size, 1]`` of the image, aspect ``h/w`` in ``[0.5, 2]``)
    are tried; the first one whose IoU with all boxes reaches the threshold and that contains the
    center of at least one box wins; boxes whose centers fall outside are dropped.

    Args:
        min_ious: Candidate minimum IoU thresholds.
        min_crop_size: Smallest crop side as a fraction of the image side.
        bbox_clip_border: Clip the kept boxes to the crop.

    Example:
        >>> np.random.seed(1)
        >>> t = MinIoURandomCrop()
        >>> r = t({'img': np.zeros((60, 80, 3), np.uint8), 'bbox_fields': ['gt_bboxes'],
        ...        'gt_bboxes': np.array([[10, 10, 70, 50]], np.float32)})
        >>> r['gt_bboxes'].dtype
        dtype('float32')
    """

    def __init__(
        self,
        min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
        min_crop_size: float = 0.3,
        bbox_clip_border: bool = True,
    ) -> None:
        check_arg(
            0 < min_crop_size <= 1,
            f"MinIoURandomCrop: min_crop_size must be in (0, 1], got {min_crop_size}",
        )
        self.min_ious = min_ious
        self.sample_mode = (1, *min_ious, 0)
        self.min_crop_size = min_crop_size
        self.bbox_clip_border = bbox_clip_border
        self.mode: float = 1

    def __call__(self, results: Results) -> Results:
        check_single_img_field(results, "MinIoURandomCrop")
        check_arg("bbox_fields" in results, "MinIoURandomCrop: results has no 'bbox_fields'")
        img = results["img"]
        keys = list(results["bbox_fields"])
        boxes = np.concatenate([bbox_array(results, key) for key in keys] or [np.zeros((0, 4))], 0)
        h, w = img.shape[:2]
        while True:
            mode = self.sample_mode[np.random.randint(len(self.sample_mode))]
            self.mode = mode
            if mode == 1:
                return results
            for _ in range(50):
                new_w = np.random.uniform(self.min_crop_size * w, w)
                new_h = np.random.uniform(self.min_crop_size * h, h)
                if new_h / new_w < 0.5 or new_h / new_w > 2:
                    continue
                # v2 draws the offsets as uniform(low=margin, high=1.0); kept for identical draws.
                left = np.random.uniform(w - new_w)
                top = np.random.uniform(h - new_h)
                patch = np.array((int(left), int(top), int(left + new_w), int(top + new_h)))
                if patch[2] == patch[0] or patch[3] == patch[1]:
                    continue
                overlaps = bbox_overlaps_np(patch.reshape(-1, 4), boxes).reshape(-1)
                if len(overlaps) > 0 and overlaps.min() < mode:
                    continue
                if len(overlaps) > 0:
                    if not centers_inside(boxes, patch).any():
                        continue
                    for key in keys:
                        kept = bbox_array(results, key)
                        inside = centers_inside(kept, patch)
                        kept = kept[inside]
                        if self.bbox_clip_border:
                            kept[:, 2:] = np.minimum(kept[:, 2:], patch[2:])
                            kept[:, :2] = np.maximum(kept[:, :2], patch[:2])
                        kept -= np.tile(patch[:2], 2).astype(np.float32)
                        results[key] = kept
                        select_instances(results, key, inside)
                        mask_key = BBOX2MASK.get(key)
                        if mask_key is not None and mask_key in results:
                            results[mask_key] = results[mask_key].crop(patch)
                results["img"] = img[patch[1] : patch[3], patch[0] : patch[2]]
                results["img_shape"] = results["img"].shape
                for key in results.get("seg_fields", []):
                    results[key] = results[key][patch[1] : patch[3], patch[0] : patch[2]]
                return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_ious={self.min_ious}, "
            f"min_crop_size={self.min_crop_size}, bbox_clip_border={self.bbox_clip_border})"
        )


@TRANSFORMS.register_module()
class RandomCenterCropPad:
    """CornerNet/CenterNet crop-and-pad around a random (train) or the image (test) center.

    Train mode picks a ratio from ``ratios`` (output ``crop_size * ratio``) and a center at least
    ``border`` (reduced for small images) from the image edges, pastes the overlapping part of
    the image on a canvas filled with ``mean`` and keeps the boxes whose centers fall in the
    pasted part. Test mode pads the whole image around its center to a size given by
    ``test_pad_mode`` (``('logical_or', 127)``: ``side | 127``; ``('size_divisor', d)``: next
    multiple of ``d``) and records ``results['border']``. Needs a float32 image; bbox only.

    Args:
        crop_size: Train-mode output ``(h, w)`` before ``ratios``; ``None`` in test mode.
        ratios: Candidate scale ratios (train mode).
        border: Minimum distance of the center from the edges (train mode).
        mean: Per-channel fill value (RGB order when ``to_rgb``).
        std: Per-channel std (kept for the record, as in v2).
        to_rgb: Whether ``mean``/``std`` are in RGB order.
        test_mode: Pad without random crop.
        test_pad_mode: ``(mode, value)`` used in test mode.
        test_pad_add_pix: Extra pixels added to each side of the test-mode target size.
        bbox_clip_border: Clip boxes to the output.

    Example:
        >>> t = RandomCenterCropPad(crop_size=None, ratios=None, border=None, mean=[0, 0, 0],
        ...     std=[1, 1, 1], to_rgb=True, test_mode=True, test_pad_mode=('logical_or', 127))
        >>> t({'img': np.zeros((100, 200, 3), np.float32)})['img'].shape
        (127, 255, 3)
    """

    def __init__(
        self,
        crop_size: Sequence[int] | None = None,
        ratios: Sequence[float] | None = (0.9, 1.0, 1.1),
        border: int | None = 128,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        to_rgb: bool | None = None,
        test_mode: bool = False,
        test_pad_mode: Sequence[Any] | None = ("logical_or", 127),
        test_pad_add_pix: int = 0,
        bbox_clip_border: bool = True,
    ) -> None:
        name, got = "RandomCenterCropPad", f"got crop_size={crop_size!r}, ratios={ratios!r}"
        if test_mode:
            check_arg(
                crop_size is None and ratios is None and border is None,
                f"{name}: crop_size, ratios and border must be None in test mode; {got}, "
                f"border={border!r}",
            )
            check_arg(
                isinstance(test_pad_mode, (list, tuple))
                and test_pad_mode[0] in ("logical_or", "size_divisor"),
                f"{name}: test_pad_mode must be ('logical_or'|'size_divisor', value), "
                f"got {test_pad_mode!r}",
            )
        else:
            check_arg(
                isinstance(crop_size, (list, tuple)) and min(crop_size) > 0 and bool(ratios),
                f"{name}: train mode needs a positive crop_size (h, w) and ratios; {got}",
            )
            check_arg(test_pad_mode is None, f"{name}: test_pad_mode must be None in train mode")
        check_arg(
            mean is not None and std is not None and to_rgb is not None,
            f"{name}: mean, std and to_rgb must be given (use the Normalize settings)",
        )
        assert mean is not None and std is not None  # for mypy
        self.crop_size = crop_size
        self.ratios = ratios
        self.border = border
        self.to_rgb = to_rgb
        self.input_mean = mean
        self.input_std = std
        self.mean = mean[::-1] if to_rgb else mean
        self.std = std[::-1] if to_rgb else std
        self.test_mode = test_mode
        self.test_pad_mode = test_pad_mode
        self.test_pad_add_pix = test_pad_add_pix
        self.bbox_clip_border = bbox_clip_border

    @staticmethod
    def _get_border(border: int, size: int) -> int:
        """Shrink ``border`` by powers of two until the center range ``2*border < size``."""
        k = 2 * border / size
        i = pow(2, np.ceil(np.log2(np.ceil(k))) + (k == int(k)))
        return int(border // i)

    def _crop_image_and_paste(
        self, image: np.ndarray, center: tuple[int, int], size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Paste the part of ``image`` around ``center`` (y, x) on a ``size`` (h, w) canvas.

        Returns:
            The canvas, the pasted area's ``[top, bottom, left, right]`` in it (float32) and
            the source ``patch`` ``[x0, y0, x1, y1]`` in the image.
        """
        center_y, center_x = center
        target_h, target_w = size
        img_h, img_w = image.shape[:2]
        x0, x1 = max(0, center_x - target_w // 2), min(center_x + target_w // 2, img_w)
        y0, y1 = max(0, center_y - target_h // 2), min(center_y + target_h // 2, img_h)
        patch = np.array((int(x0), int(y0), int(x1), int(y1)))
        left, right = center_x - x0, x1 - center_x
        top, bottom = center_y - y0, y1 - center_y
        mid_y, mid_x = target_h // 2, target_w // 2
        canvas = np.zeros((target_h, target_w, image.shape[2]), dtype=image.dtype)
        canvas += np.asarray(self.mean, dtype=image.dtype)
        canvas[mid_y - top : mid_y + bottom, mid_x - left : mid_x + right] = image[y0:y1, x0:x1]
        border = [mid_y - top, mid_y + bottom, mid_x - left, mid_x + right]
        return canvas, np.array(border, dtype=np.float32), patch

    def _train_aug(self, results: Results) -> Results:
        assert self.crop_size is not None and self.ratios is not None and self.border is not None
        img = results["img"]
        h, w = img.shape[:2]
        boxes = bbox_array(results, "gt_bboxes")
        while True:
            scale = self.ratios[np.random.randint(len(self.ratios))]
            new_h, new_w = int(self.crop_size[0] * scale), int(self.crop_size[1] * scale)
            h_border = self._get_border(self.border, h)
            w_border = self._get_border(self.border, w)
            for _ in range(50):
                center_x = int(np.random.randint(low=w_border, high=w - w_border))
                center_y = int(np.random.randint(low=h_border, high=h - h_border))
                canvas, _, patch = self._crop_image_and_paste(
                    img, (center_y, center_x), (new_h, new_w)
                )
                if len(boxes) > 0 and not centers_inside(boxes, patch).any():
                    continue
                results["img"] = canvas
                results["img_shape"] = canvas.shape
                results["pad_shape"] = canvas.shape
                dx, dy = new_w // 2 - center_x, new_h // 2 - center_y
                for key in results.get("bbox_fields", []):
                    bboxes = bbox_array(results, key)
                    inside = centers_inside(bboxes, patch)
                    bboxes = bboxes[inside]
                    bboxes[:, 0::2] += dx
                    bboxes[:, 1::2] += dy
                    if self.bbox_clip_border:
                        bboxes[:, 0::2] = np.clip(bboxes[:, 0::2], 0, new_w)
                        bboxes[:, 1::2] = np.clip(bboxes[:, 1::2], 0, new_h)
                    keep = (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
                    results[key] = bboxes[keep]
                    if key == "gt_bboxes":
                        if "gt_labels" in results:
                            results["gt_labels"] = results["gt_labels"][inside][keep]
                        if "gt_masks" in results:
                            raise NotImplementedError("RandomCenterCropPad only supports boxes")
                if results.get("seg_fields"):
                    raise NotImplementedError("RandomCenterCropPad only supports boxes")
                return results

    def _test_aug(self, results: Results) -> Results:
        assert self.test_pad_mode is not None
        img = results["img"]
        h, w = img.shape[:2]
        results["img_shape"] = img.shape
        mode, value = self.test_pad_mode[0], self.test_pad_mode[1]
        if mode == "logical_or":
            target_h = (h | value) + self.test_pad_add_pix
            target_w = (w | value) + self.test_pad_add_pix
        else:
            target_h = int(np.ceil(h / value)) * value
            target_w = int(np.ceil(w / value)) * value
        canvas, border, _ = self._crop_image_and_paste(img, (h // 2, w // 2), (target_h, target_w))
        results["img"] = canvas
        results["pad_shape"] = canvas.shape
        results["border"] = border
        return results

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        if img.dtype != np.float32:
            raise TypeError(
                "RandomCenterCropPad needs a float32 image (to_float32=True in "
                f"LoadImageFromFile), got {img.dtype}"
            )
        check_arg(
            img.ndim == 3 and img.shape[2] == len(self.mean),
            f"RandomCenterCropPad: image shape {img.shape} vs {len(self.mean)} mean values",
        )
        return self._test_aug(results) if self.test_mode else self._train_aug(results)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, ratios={self.ratios}, "
            f"border={self.border}, mean={self.input_mean}, std={self.input_std}, "
            f"to_rgb={self.to_rgb}, test_mode={self.test_mode}, "
            f"test_pad_mode={self.test_pad_mode}, bbox_clip_border={self.bbox_clip_border})"
        )
