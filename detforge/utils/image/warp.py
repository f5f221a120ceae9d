"""Affine warps with mmcv 1.x's exact numbers: rotate, shear and translate.

Images are ``ndarray[H, W, C]`` or ``ndarray[H, W]``; inputs are never modified.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import cv2
import numpy as np

from detforge.utils.image.geometry import _interp, _lookup

__all__ = ["imrotate", "imshear", "imtranslate"]

_WARP_BORDERS: dict[str, int] = {
    "constant": cv2.BORDER_CONSTANT,
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
    "reflect_101": cv2.BORDER_REFLECT_101,
    "transparent": cv2.BORDER_TRANSPARENT,
}


def _border_tuple(border_value: float | Sequence[float], img: np.ndarray) -> tuple[float, ...]:
    channels = 1 if img.ndim == 2 else img.shape[-1]
    if isinstance(border_value, numbers.Number):
        return (float(border_value),) * channels  # type: ignore[arg-type]
    values = tuple(float(v) for v in border_value)  # type: ignore[union-attr]
    if len(values) != channels:
        raise ValueError(
            f"border_value {border_value!r} has {len(values)} values but the image has "
            f"{channels} channels"
        )
    return values


def imrotate(
    img: np.ndarray,
    angle: float,
    center: tuple[float, float] | None = None,
    scale: float = 1.0,
    border_value: float | Sequence[float] = 0,
    interpolation: str = "bilinear",
    auto_bound: bool = False,
    border_mode: str = "constant",
) -> np.ndarray:
    """Rotate by ``angle`` degrees clockwise about ``center`` (default: the image centre).

    Args:
        img: The image.
        angle: Degrees; positive is clockwise.
        center: ``(x, y)`` in the source image; default ``((w - 1) / 2, (h - 1) / 2)``.
        scale: Isotropic scale applied with the rotation.
        border_value: Fill for pixels from outside the source.
        interpolation: See :func:`imresize`.
        auto_bound: Grow the canvas to hold the whole rotated image (needs ``center=None``).
        border_mode: ``'constant'``, ``'edge'``, ``'reflect'``, ...

    Example:
        >>> imrotate(np.zeros((10, 20), np.uint8), 90, auto_bound=True).shape
        (20, 10)
    """
    if center is not None and auto_bound:
        raise ValueError("imrotate: auto_bound=True cannot be combined with an explicit center")
    h, w = img.shape[:2]
    if center is None:
        center = ((w - 1) * 0.5, (h - 1) * 0.5)
    matrix = cv2.getRotationMatrix2D(tuple(float(c) for c in center), -angle, scale)
    if auto_bound:
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        new_w = h * sin + w * cos
        new_h = h * cos + w * sin
        matrix[0, 2] += (new_w - w) * 0.5
        matrix[1, 2] += (new_h - h) * 0.5
        w, h = int(np.round(new_w)), int(np.round(new_h))
    border = _border_tuple(border_value, img)[:4]
    return cv2.warpAffine(
        img,
        matrix,
        (w, h),
        flags=_interp(interpolation),
        borderMode=_lookup(_WARP_BORDERS, border_mode, "border_mode"),
        borderValue=border,
    )


def _warp_fixed(
    img: np.ndarray,
    matrix: np.ndarray,
    border_value: float | Sequence[float],
    interpolation: str,
) -> np.ndarray:
    h, w = img.shape[:2]
    border = _border_tuple(border_value, img)
    # OpenCV accepts at most four border values; masks with more channels use the first three,
    # as mmcv does.
    return cv2.warpAffine(img, matrix, (w, h), borderValue=border[:3], flags=_interp(interpolation))


def imshear(
    img: np.ndarray,
    magnitude: float,
    direction: str = "horizontal",
    border_value: float | Sequence[float] = 0,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Shear: ``x' = x + magnitude * y`` (horizontal) or ``y' = y + magnitude * x`` (vertical).

    Example:
        >>> imshear(np.ones((4, 4), np.uint8), 0.5).shape
        (4, 4)
    """
    if direction == "horizontal":
        matrix = np.array([[1, magnitude, 0], [0, 1, 0]], dtype=np.float32)
    elif direction == "vertical":
        matrix = np.array([[1, 0, 0], [magnitude, 1, 0]], dtype=np.float32)
    else:
        raise ValueError(f"shear direction must be 'horizontal' or 'vertical', got {direction!r}")
    return _warp_fixed(img, matrix, border_value, interpolation)


def imtranslate(
    img: np.ndarray,
    offset: float,
    direction: str = "horizontal",
    border_value: float | Sequence[float] = 0,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Shift by ``offset`` pixels right (horizontal) or down (vertical); keeps the size.

    Example:
        >>> imtranslate(np.array([[1, 2, 3]], np.uint8), 1, interpolation='nearest').tolist()
        [[0, 1, 2]]
    """
    if direction == "horizontal":
        matrix = np.array([[1, 0, offset], [0, 1, 0]], dtype=np.float32)
    elif direction == "vertical":
        matrix = np.array([[1, 0, 0], [0, 1, offset]], dtype=np.float32)
    else:
        raise ValueError(
            f"translate direction must be 'horizontal' or 'vertical', got {direction!r}"
        )
    return _warp_fixed(img, matrix, border_value, interpolation)
