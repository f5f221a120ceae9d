"""Colour operations: normalisation, colour-space conversions and PIL-style enhancements.

Images are BGR ``ndarray[H, W, 3]`` unless said otherwise. Inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "adjust_brightness",
    "adjust_color",
    "adjust_contrast",
    "bgr2gray",
    "bgr2hsv",
    "bgr2rgb",
    "gray2bgr",
    "hsv2bgr",
    "imdenormalize",
    "imequalize",
    "imnormalize",
    "rgb2bgr",
]


def imnormalize(
    img: np.ndarray,
    mean: Sequence[float] | np.ndarray,
    std: Sequence[float] | np.ndarray,
    to_rgb: bool = True,
) -> np.ndarray:
    """``(img[..., ::-1] - mean) / std`` in float32 (without the channel swap if not to_rgb).

    Example:
        >>> out = imnormalize(np.full((1, 1, 3), 10, np.uint8), [1, 2, 3], [1, 2, 1])
        >>> out.dtype.name, out.ravel().tolist()
        ('float32', [9.0, 4.0, 7.0])
    """
    out: np.ndarray = img.astype(np.float32)
    mean64 = np.asarray(mean, dtype=np.float64).reshape(1, -1)
    stdinv = 1.0 / np.asarray(std, dtype=np.float64).reshape(1, -1)
    if to_rgb:
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    cv2.subtract(out, mean64, out)
    cv2.multiply(out, stdinv, out)
    return out


def imdenormalize(
    img: np.ndarray,
    mean: Sequence[float] | np.ndarray,
    std: Sequence[float] | np.ndarray,
    to_bgr: bool = True,
) -> np.ndarray:
    """Invert :func:`imnormalize`: ``img * std + mean``, then RGB -> BGR if ``to_bgr``."""
    if img.dtype == np.uint8:
        raise TypeError("imdenormalize expects a float image, got uint8")
    mean64 = np.asarray(mean, dtype=np.float64).reshape(1, -1)
    std64 = np.asarray(std, dtype=np.float64).reshape(1, -1)
    out = cv2.multiply(img, std64)
    cv2.add(out, mean64, out)
    if to_bgr:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    return out


def bgr2gray(img: np.ndarray, keepdim: bool = False) -> np.ndarray:
    """BGR to single-channel gray (``ndarray[H, W, 1]`` with ``keepdim``)."""
    out = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return out[..., None] if keepdim else out


def gray2bgr(img: np.ndarray) -> np.ndarray:
    """Gray ``ndarray[H, W]`` or ``[H, W, 1]`` to 3-channel BGR."""
    img = img[..., None] if img.ndim == 2 else img
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def bgr2rgb(img: np.ndarray) -> np.ndarray:
    """Swap BGR to RGB."""
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def rgb2bgr(img: np.ndarray) -> np.ndarray:
    """Swap RGB to BGR."""
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def bgr2hsv(img: np.ndarray) -> np.ndarray:
    """BGR to OpenCV HSV (for uint8: H in [0, 180), S and V in [0, 255])."""
    return cv2.cvtColor(img, cv2.COLOR_BGR2HSV)


def hsv2bgr(img: np.ndarray) -> np.ndarray:
    """OpenCV HSV to BGR."""
    return cv2.cvtColor(img, cv2.COLOR_HSV2BGR)


def adjust_color(
    img: np.ndarray, alpha: float = 1, beta: float | None = None, gamma: float = 0
) -> np.ndarray:
    """Blend with the image's own gray version: ``img * alpha + gray * beta + gamma``.

    ``beta`` defaults to ``1 - alpha``. uint8 saturates as in ``cv2.addWeighted``; other
    dtypes are clipped to [0, 255].

    Example:
        >>> img = np.array([[[0, 128, 255]]], np.uint8)
        >>> adjust_color(img, 0).tolist() == [[[bgr2gray(img)[0, 0]] * 3]]
        True
    """
    gray = np.tile(bgr2gray(img)[..., None], [1, 1, 3])
    if beta is None:
        beta = 1 - alpha
    out = cv2.addWeighted(img, alpha, gray, beta, gamma)
    if out.dtype != np.uint8:
        out = np.clip(out, 0, 255)
    return out


def adjust_brightness(img: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Blend with black: ``clip(img * factor, 0, 255)`` computed in float32, same dtype out.

    Example:
        >>> adjust_brightness(np.array([[[100, 200, 50]]], np.uint8), 1.5).tolist()
        [[[150, 255, 75]]]
    """
    zeros = np.zeros_like(img, dtype=np.float32)
    out = cv2.addWeighted(img.astype(np.float32), factor, zeros, 1 - factor, 0)
    return np.clip(out, 0, 255).astype(img.dtype)


def adjust_contrast(img: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Blend with a flat image at the rounded mean gray level (BGR input).

    Example:
        >>> img = np.array([[[0, 0, 0]], [[200, 200, 200]]], np.uint8)
        >>> adjust_contrast(img, 0).ravel().tolist()
        [100, 100, 100, 100, 100, 100]
    """
    gray = bgr2gray(img)
    hist = np.histogram(gray, 256, (0, 255))[0]
    mean = round(np.sum(gray) / np.sum(hist))
    flat = gray2bgr((np.ones_like(img[..., 0]) * mean).astype(img.dtype))
    out = cv2.addWeighted(img.astype(np.float32), factor, flat.astype(np.float32), 1 - factor, 0)
    return np.clip(out, 0, 255).astype(img.dtype)


def _equalize_channel(channel: np.ndarray) -> np.ndarray:
    hist = np.histogram(channel, 256, (0, 255))[0]
    nonzero = hist[hist > 0]
    step = (np.sum(nonzero) - nonzero[-1]) // 255
    if not step:
        return channel
    lut = (np.cumsum(hist) + (step // 2)) // step
    lut = np.concatenate([[0], lut[:-1]], 0)
    lut[lut > 255] = 255
    return lut[channel]


def imequalize(img: np.ndarray) -> np.ndarray:
    """Histogram-equalise each of the three channels independently (PIL's algorithm).

    Example:
        >>> img = np.repeat(np.array([0, 10, 20], np.uint8), 300).reshape(30, 30, 1)
        >>> np.unique(imequalize(np.tile(img, 3))).tolist()
        [0, 150, 255]
    """
    channels = [_equalize_channel(img[:, :, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(img.dtype)
