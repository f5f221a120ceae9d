"""Photometric transforms: ``Normalize``, ``PhotoMetricDistortion``, ``YOLOXHSVRandomAug``.

They change pixel values only, never geometry. The random ones draw from ``np.random`` in the
same order as MMDetection v2, so seeding ``np.random`` reproduces v2's augmentations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detforge.datasets.transforms._utils import check_arg
from detforge.registry import TRANSFORMS
from detforge.utils.image import bgr2hsv, hsv2bgr, imnormalize

__all__ = ["Normalize", "PhotoMetricDistortion", "YOLOXHSVRandomAug"]


def _single_img(results: dict[str, Any], owner: str) -> np.ndarray:
    fields = results.get("img_fields", ["img"])
    check_arg(fields == ["img"], f"{owner}: Only single img_fields is allowed, got {fields}")
    return results["img"]


@TRANSFORMS.register_module()
class Normalize:
    """Convert to float32, optionally BGR -> RGB, then ``(img - mean) / std``.

    Sets ``img_norm_cfg = dict(mean, std, to_rgb)`` for later de-normalisation.

    Args:
        mean: Per-channel mean, in the order after the optional swap.
        std: Per-channel standard deviation.
        to_rgb: Swap BGR to RGB first.

    Example:
        >>> norm = Normalize(mean=[1, 2, 3], std=[1, 1, 1])
        >>> norm({'img': np.full((1, 1, 3), 10, np.uint8)})['img'].ravel().tolist()
        [9.0, 8.0, 7.0]
        >>> norm
        Normalize(mean=[1. 2. 3.], std=[1. 1. 1.], to_rgb=True)
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True) -> None:
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {list(std)}")
        self.to_rgb = to_rgb

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for key in results.get("img_fields", ["img"]):
            results[key] = imnormalize(results[key], self.mean, self.std, self.to_rgb)
        results["img_norm_cfg"] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std}, to_rgb={self.to_rgb})"


@TRANSFORMS.register_module()
class PhotoMetricDistortion:
    """Random brightness, contrast, saturation, hue and channel order, each with p = 0.5.

    The steps, in v2's order (contrast is either second or second to last, by a coin):
    brightness, contrast (mode 0), BGR -> HSV, saturation, hue, HSV -> BGR, contrast
    (mode 1), channel swap. The image becomes float32 and is not clipped, as in v2.

    Args:
        brightness_delta: Add a value drawn from ``[-delta, delta]``.
        contrast_range: Multiply by a value drawn from this range.
        saturation_range: Multiply the S channel by a value drawn from this range.
        hue_delta: Shift the H channel (degrees) by a value drawn from ``[-delta, delta]``.

    Example:
        >>> np.random.seed(0)
        >>> out = PhotoMetricDistortion()({'img': np.full((2, 2, 3), 128, np.uint8)})
        >>> out['img'].dtype.name, out['img'].shape
        ('float32', (2, 2, 3))
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: int = 18,
    ) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_lower, self.contrast_upper = contrast_range
        self.saturation_lower, self.saturation_upper = saturation_range
        self.hue_delta = hue_delta

    def _contrast(self, img: np.ndarray) -> np.ndarray:
        if np.random.randint(2):
            img *= np.random.uniform(self.contrast_lower, self.contrast_upper)
        return img

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        img = _single_img(results, type(self).__name__).astype(np.float32)
        if np.random.randint(2):
            img += np.random.uniform(-self.brightness_delta, self.brightness_delta)
        contrast_last = np.random.randint(2) == 0
        if not contrast_last:
            img = self._contrast(img)
        img = bgr2hsv(img)
        if np.random.randint(2):
            img[..., 1] *= np.random.uniform(self.saturation_lower, self.saturation_upper)
        if np.random.randint(2):
            hue = img[..., 0]
            hue += np.random.uniform(-self.hue_delta, self.hue_delta)
            hue[hue > 360] -= 360
            hue[hue < 0] += 360
        img = hsv2bgr(img)
        if contrast_last:
            img = self._contrast(img)
        if np.random.randint(2):
            img = img[..., np.random.permutation(3)]
        results["img"] = img
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\nbrightness_delta={self.brightness_delta},\n"
            f"contrast_range={(self.contrast_lower, self.contrast_upper)},\n"
            f"saturation_range={(self.saturation_lower, self.saturation_upper)},\n"
            f"hue_delta={self.hue_delta})"
        )


@TRANSFORMS.register_module()
class YOLOXHSVRandomAug:
    """YOLOX's HSV jitter: random integer gains on H, S and V, each kept with p = 0.5.

    Works in OpenCV's uint8 HSV space (H wraps modulo 180, S and V are clipped to [0, 255]);
    the result has the input's dtype. Unlike v2, the input array is not modified in place.

    Args:
        hue_delta: Maximum hue gain.
        saturation_delta: Maximum saturation gain.
        value_delta: Maximum value gain.

    Example:
        >>> np.random.seed(0)
        >>> out = YOLOXHSVRandomAug()({'img': np.full((2, 2, 3), 100, np.uint8)})
        >>> out['img'].dtype.name, out['img'].shape
        ('uint8', (2, 2, 3))
    """

    def __init__(
        self, hue_delta: int = 5, saturation_delta: int = 30, value_delta: int = 30
    ) -> None:
        self.hue_delta = hue_delta
        self.saturation_delta = saturation_delta
        self.value_delta = value_delta

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        img = results["img"]
        gains = np.random.uniform(-1, 1, 3) * [
            self.hue_delta,
            self.saturation_delta,
            self.value_delta,
        ]
        gains *= np.random.randint(0, 2, 3)
        gains = gains.astype(np.int16)
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
        results["img"] = cv2.cvtColor(hsv.astype(img.dtype), cv2.COLOR_HSV2BGR)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(hue_delta={self.hue_delta}, "
            f"saturation_delta={self.saturation_delta}, value_delta={self.value_delta})"
        )
