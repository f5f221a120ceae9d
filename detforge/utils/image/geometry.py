"""Image geometry with mmcv 1.x's exact numbers: resize, flip, crop and pad.

Images are ``ndarray[H, W, C]`` or ``ndarray[H, W]``. ``size`` and ``old_size`` are ``(w, h)``,
``shape`` is ``(h, w)``. Inputs are never modified. Affine warps (rotate, shear, translate)
live in :mod:`detforge.utils.image.warp`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal, overload

import cv2
import numpy as np

__all__ = [
    "INTERPOLATION_CODES",
    "imcrop",
    "imflip",
    "impad",
    "impad_to_multiple",
    "imrescale",
    "imresize",
    "rescale_size",
]

INTERPOLATION_CODES: dict[str, int] = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}

# impad's padding modes (numpy names) and imrotate's border modes (OpenCV names), as in mmcv.
_PAD_MODES: dict[str, int] = {
    "constant": cv2.BORDER_CONSTANT,
    "edge": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
}

_Size = tuple[int, int]
_Scale = float | tuple[int, int]


def _lookup(table: dict[str, int], name: str, what: str) -> int:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(table)}")
    return table[name]


def _interp(name: str) -> int:
    return _lookup(INTERPOLATION_CODES, name, "interpolation")


# ----------------------------------------------------------------------------- resizing


def _rescale_with_factor(old_size: _Size, scale: _Scale) -> tuple[_Size, float]:
    w, h = old_size
    if isinstance(scale, numbers.Number) and not isinstance(scale, bool):
        if scale <= 0:
            raise ValueError(f"invalid scale {scale}: must be positive")
        factor = float(scale)
    elif isinstance(scale, tuple | list):
        long_edge, short_edge = max(scale), min(scale)
        factor = min(long_edge / max(h, w), short_edge / min(h, w))
    else:
        raise TypeError(f"scale must be a number or a tuple of ints, got {type(scale).__name__}")
    # mmcv rounds half up: int(x * s + 0.5)
    return (int(w * factor + 0.5), int(h * factor + 0.5)), factor


@overload
def rescale_size(old_size: _Size, scale: _Scale, return_scale: Literal[False] = ...) -> _Size: ...
@overload
def rescale_size(
    old_size: _Size, scale: _Scale, return_scale: Literal[True]
) -> tuple[_Size, float]: ...
@overload
def rescale_size(
    old_size: _Size, scale: _Scale, return_scale: bool
) -> _Size | tuple[_Size, float]: ...


def rescale_size(
    old_size: _Size, scale: _Scale, return_scale: bool = False
) -> _Size | tuple[_Size, float]:
    """The size ``(w, h)`` an image of ``old_size`` takes after a keep-ratio rescale.

    A number scales both sides by it; a tuple is a bounding size in any orientation: the long
    side is kept within ``max(scale)`` and the short side within ``min(scale)``.

    Args:
        old_size: ``(w, h)``.
        scale: A positive factor, or a ``(long, short)`` / ``(short, long)`` bound.
        return_scale: Also return the factor used.

    Returns:
        ``(new_w, new_h)``, or ``((new_w, new_h), factor)``.

    Example:
        >>> rescale_size((640, 427), (1333, 800), return_scale=True)
        ((1199, 800), 1.873536299765808)
    """
    new_size, factor = _rescale_with_factor(old_size, scale)
    return (new_size, factor) if return_scale else new_size


@overload
def imresize(
    img: np.ndarray, size: _Size, return_scale: Literal[False] = ..., interpolation: str = ...
) -> np.ndarray: ...
@overload
def imresize(
    img: np.ndarray, size: _Size, return_scale: Literal[True], interpolation: str = ...
) -> tuple[np.ndarray, float, float]: ...
@overload
def imresize(
    img: np.ndarray, size: _Size, return_scale: bool, interpolation: str = ...
) -> np.ndarray | tuple[np.ndarray, float, float]: ...


def imresize(
    img: np.ndarray, size: _Size, return_scale: bool = False, interpolation: str = "bilinear"
) -> np.ndarray | tuple[np.ndarray, float, float]:
    """Resize to exactly ``size = (w, h)``.

    Returns:
        The resized image, or ``(img, w_scale, h_scale)`` with ``return_scale``.

    Example:
        >>> imresize(np.zeros((4, 6, 3), np.uint8), (3, 2)).shape
        (2, 3, 3)
    """
    h, w = img.shape[:2]
    resized = cv2.resize(img, (int(size[0]), int(size[1])), interpolation=_interp(interpolation))
    if not return_scale:
        return resized
    return resized, size[0] / w, size[1] / h


@overload
def imrescale(
    img: np.ndarray, scale: _Scale, return_scale: Literal[False] = ..., interpolation: str = ...
) -> np.ndarray: ...
@overload
def imrescale(
    img: np.ndarray, scale: _Scale, return_scale: Literal[True], interpolation: str = ...
) -> tuple[np.ndarray, float]: ...
@overload
def imrescale(
    img: np.ndarray, scale: _Scale, return_scale: bool, interpolation: str = ...
) -> np.ndarray | tuple[np.ndarray, float]: ...


def imrescale(
    img: np.ndarray, scale: _Scale, return_scale: bool = False, interpolation: str = "bilinear"
) -> np.ndarray | tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio (see :func:`rescale_size` for ``scale``).

    Returns:
        The image, or ``(img, factor)`` with ``return_scale``.

    Example:
        >>> imrescale(np.zeros((427, 640, 3), np.uint8), (1333, 800)).shape
        (800, 1199, 3)
    """
    h, w = img.shape[:2]
    new_size, factor = _rescale_with_factor((w, h), scale)
    out = imresize(img, new_size, interpolation=interpolation)
    return (out, factor) if return_scale else out


# ----------------------------------------------------------------------------- geometry


def imflip(img: np.ndarray, direction: str = "horizontal") -> np.ndarray:
    """Flip left-right (``'horizontal'``), up-down (``'vertical'``) or both (``'diagonal'``).

    Example:
        >>> imflip(np.array([[1, 2], [3, 4]]), 'diagonal').tolist()
        [[4, 3], [2, 1]]
    """
    axes = {"horizontal": (1,), "vertical": (0,), "diagonal": (0, 1)}
    if direction not in axes:
        raise ValueError(f"flip direction must be one of {list(axes)}, got {direction!r}")
    return np.ascontiguousarray(np.flip(img, axis=axes[direction]))


def _clip_boxes_inclusive(boxes: np.ndarray, img_shape: tuple[int, ...]) -> np.ndarray:
    limits = np.empty(boxes.shape[-1], dtype=boxes.dtype)
    limits[0::2] = img_shape[1] - 1
    limits[1::2] = img_shape[0] - 1
    return np.maximum(np.minimum(boxes, limits), 0)


def _scale_boxes_about_center(boxes: np.ndarray, scale: float) -> np.ndarray:
    if float(scale) == 1.0:
        return boxes.copy()
    w = boxes[..., 2] - boxes[..., 0] + 1
    h = boxes[..., 3] - boxes[..., 1] + 1
    dw = w * (scale - 1) * 0.5
    dh = h * (scale - 1) * 0.5
    return boxes + np.stack((-dw, -dh, dw, dh), axis=-1)


def imcrop(
    img: np.ndarray,
    bboxes: np.ndarray,
    scale: float = 1.0,
    pad_fill: float | Sequence[float] | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Crop patches given inclusive integer boxes, as mmcv does.

    Each box is first scaled about its centre by ``scale``; patches are
    ``img[y1:y2 + 1, x1:x2 + 1]`` after clipping to the image. With ``pad_fill`` the patch keeps
    the scaled box's full size and the part outside the image is filled with that value.

    Args:
        img: The image.
        bboxes: ``ndarray[4]`` or ``ndarray[K, 4]`` (``x1, y1, x2, y2``, inclusive).
        scale: Box scale factor about the centre.
        pad_fill: Fill for the out-of-image part, per channel or one number; None clips.

    Returns:
        One patch for a 1-d box, else a list of patches.

    Example:
        >>> imcrop(np.arange(16).reshape(4, 4), np.array([1, 1, 2, 2])).tolist()
        [[5, 6], [9, 10]]
    """
    channels = 1 if img.ndim == 2 else img.shape[2]
    fill: list[float] | None = None
    if pad_fill is not None:
        fill = (
            [float(pad_fill)] * channels  # type: ignore[arg-type]
            if isinstance(pad_fill, numbers.Number)
            else [float(v) for v in pad_fill]  # type: ignore[union-attr]
        )
        if len(fill) != channels:
            raise ValueError(f"pad_fill has {len(fill)} values for {channels} channels")
    boxes = np.asarray(bboxes)
    boxes2d = boxes[None, ...] if boxes.ndim == 1 else boxes
    scaled = _scale_boxes_about_center(boxes2d, scale).astype(np.int32)
    clipped = _clip_boxes_inclusive(scaled, img.shape)
    patches = []
    for i in range(clipped.shape[0]):
        x1, y1, x2, y2 = (int(v) for v in clipped[i])
        if fill is None:
            patches.append(img[y1 : y2 + 1, x1 : x2 + 1, ...])
            continue
        sx1, sy1, sx2, sy2 = (int(v) for v in scaled[i])
        shape: tuple[int, ...] = (sy2 - sy1 + 1, sx2 - sx1 + 1)
        if channels > 1 or img.ndim == 3:
            shape = (*shape, channels)
        patch = np.array(fill, dtype=img.dtype) * np.ones(shape, dtype=img.dtype)
        if img.ndim == 2:
            patch = patch.reshape(shape)
        xs, ys = max(-sx1, 0), max(-sy1, 0)
        pw, ph = x2 - x1 + 1, y2 - y1 + 1
        patch[ys : ys + ph, xs : xs + pw, ...] = img[y1 : y1 + ph, x1 : x1 + pw, ...]
        patches.append(patch)
    return patches[0] if boxes.ndim == 1 else patches


def impad(
    img: np.ndarray,
    *,
    shape: tuple[int, int] | None = None,
    padding: int | tuple[int, int] | tuple[int, int, int, int] | None = None,
    pad_val: float | Sequence[float] = 0,
    padding_mode: str = "constant",
) -> np.ndarray:
    """Pad to ``shape = (h, w)`` at the bottom/right, or by ``padding`` on each side.

    Args:
        img: The image.
        shape: Target ``(h, w)``; sides already larger are left as they are.
        padding: One int for all sides, ``(left/right, top/bottom)`` or
            ``(left, top, right, bottom)``. Exactly one of ``shape`` and ``padding``.
        pad_val: Fill value, one number or one per channel.
        padding_mode: ``'constant'``, ``'edge'``, ``'reflect'`` or ``'symmetric'``.

    Example:
        >>> impad(np.ones((2, 3), np.uint8), shape=(4, 4)).tolist()
        [[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    if (shape is None) == (padding is None):
        raise ValueError("impad: give exactly one of shape and padding")
    if shape is not None:
        pads: tuple[int, ...] = (
            0,
            0,
            max(int(shape[1]) - img.shape[1], 0),
            max(int(shape[0]) - img.shape[0], 0),
        )
    elif isinstance(padding, numbers.Number):
        pads = (int(padding),) * 4
    elif isinstance(padding, tuple) and len(padding) in (2, 4):
        pads = tuple(int(p) for p in padding)
        if len(pads) == 2:
            pads = (pads[0], pads[1], pads[0], pads[1])
    else:
        raise ValueError(f"padding must be an int or a 2- or 4-tuple, got {padding!r}")
    if isinstance(pad_val, tuple | list):
        if len(pad_val) != img.shape[-1]:
            raise ValueError(f"pad_val {pad_val!r} does not match {img.shape[-1]} channels")
        value: float | tuple[float, ...] = tuple(pad_val)
    elif isinstance(pad_val, numbers.Number):
        value = pad_val  # type: ignore[assignment]
    else:
        raise TypeError(f"pad_val must be a number or a tuple, got {type(pad_val).__name__}")
    left, top, right, bottom = pads
    return cv2.copyMakeBorder(
        img,
        top,
        bottom,
        left,
        right,
        _lookup(_PAD_MODES, padding_mode, "padding_mode"),
        value=value,
    )


def impad_to_multiple(
    img: np.ndarray, divisor: int, pad_val: float | Sequence[float] = 0
) -> np.ndarray:
    """Pad at the bottom/right so both sides are multiples of ``divisor``.

    Example:
        >>> impad_to_multiple(np.zeros((30, 33, 3), np.uint8), 32).shape
        (32, 64, 3)
    """
    pad_h = int(np.ceil(img.shape[0] / divisor)) * divisor
    pad_w = int(np.ceil(img.shape[1] / divisor)) * divisor
    return impad(img, shape=(pad_h, pad_w), pad_val=pad_val)
