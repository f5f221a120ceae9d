"""Image reading and writing: decode from files or bytes, encode to files.

Decoding goes through ``cv2.imdecode`` on the file's bytes, so any path works; missing, empty,
corrupt and truncated files raise :class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from detforge.errors import DetforgeError

__all__ = ["ImageLoadError", "exif_orientation", "imfrombytes", "imread", "imwrite"]

_READ_FLAGS: dict[str, int] = {
    "color": cv2.IMREAD_COLOR,
    "grayscale": cv2.IMREAD_GRAYSCALE,
    "unchanged": cv2.IMREAD_UNCHANGED,
    "color_ignore_orientation": cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR,
    "grayscale_ignore_orientation": cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_GRAYSCALE,
}

_EXIF_ORIENTATION = 0x0112
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"


class ImageLoadError(DetforgeError, OSError):
    """An image file is missing, empty, corrupt or truncated; the message names the file."""


def _decode(content: bytes, flag: str, channel_order: str, source: str) -> np.ndarray:
    if flag not in _READ_FLAGS:
        raise ValueError(f"unknown imread flag {flag!r}; expected one of {sorted(_READ_FLAGS)}")
    if channel_order not in ("bgr", "rgb"):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if len(content) == 0:
        raise ImageLoadError(f"image file is empty: {source}")
    # libjpeg only warns about a missing end-of-image marker and fills the rest with grey; a
    # JPEG whose data stops before EOI is treated as truncated. Trailing NUL/whitespace padding
    # written by some cameras and tools is tolerated.
    if content[:2] == _JPEG_SOI and not content.rstrip(b"\x00\r\n \t").endswith(_JPEG_EOI):
        raise ImageLoadError(f"image file is truncated (JPEG has no end marker): {source}")
    buffer = np.frombuffer(content, np.uint8)
    try:
        img = cv2.imdecode(buffer, _READ_FLAGS[flag])
    except cv2.error as exc:
        raise ImageLoadError(f"could not decode image {source}: {exc}") from exc
    if img is None:
        raise ImageLoadError(f"could not decode image (corrupt or unknown format): {source}")
    if channel_order == "rgb" and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB if img.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return img


def imfrombytes(content: bytes, flag: str = "color", channel_order: str = "bgr") -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) held in memory.

    Args:
        content: The file's bytes.
        flag: ``'color'`` (always 3 channels), ``'grayscale'``, ``'unchanged'``, or the
            ``*_ignore_orientation`` variants that skip the EXIF rotation.
        channel_order: ``'bgr'`` or ``'rgb'``.

    Returns:
        ndarray[H, W, C] or ndarray[H, W], usually uint8.

    Raises:
        ImageLoadError: the bytes are empty, corrupt or a truncated JPEG.

    Example:
        >>> ok, buf = cv2.imencode('.png', np.zeros((2, 3), np.uint8))
        >>> imfrombytes(buf.tobytes()).shape
        (2, 3, 3)
    """
    return _decode(content, flag, channel_order, "<bytes>")


def imread(
    img_or_path: np.ndarray | str | os.PathLike[str],
    flag: str = "color",
    channel_order: str = "bgr",
) -> np.ndarray:
    """Read an image file (any path, non-ASCII included) or pass an array through.

    The file is read as bytes and decoded with ``cv2.imdecode``, so paths OpenCV's own reader
    cannot open still work. With ``flag='color'`` a grayscale file loads as 3 channels.

    Args:
        img_or_path: A path, or an already loaded array (returned unchanged).
        flag: See :func:`imfrombytes`.
        channel_order: ``'bgr'`` or ``'rgb'``.

    Returns:
        The image, ``ndarray[H, W, 3]`` uint8 for ``flag='color'``.

    Raises:
        ImageLoadError: the file is missing, empty, corrupt or truncated (message names it).
        TypeError: ``img_or_path`` is neither an array nor a path.

    Example:
        >>> imread(np.zeros((2, 2, 3), np.uint8)).shape
        (2, 2, 3)
    """
    if isinstance(img_or_path, np.ndarray):
        return img_or_path
    if not isinstance(img_or_path, str | os.PathLike):
        raise TypeError(
            f"imread expects an ndarray or a path, got {type(img_or_path).__name__}: "
            f"{img_or_path!r}"
        )
    path = Path(img_or_path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(f"image file not found: {path}") from None
    except OSError as exc:
        raise ImageLoadError(f"could not read image file {path}: {exc}") from exc
    return _decode(content, flag, channel_order, str(path))


def exif_orientation(path: str | os.PathLike[str]) -> int:
    """The EXIF orientation (1 to 8) of an image file; 1 when it has none or cannot be read.

    Orientations 5 to 8 swap width and height; ``imread`` with ``'color'`` or ``'grayscale'``
    applies them.

    Example:
        >>> exif_orientation('/no/such/file.jpg')
        1
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def imwrite(
    img: np.ndarray,
    file_path: str | os.PathLike[str],
    params: list[int] | None = None,
    auto_mkdir: bool = True,
) -> bool:
    """Encode an image by the file extension and write it (non-ASCII paths work).

    Args:
        img: The image.
        file_path: Where to write; the suffix picks the format.
        params: OpenCV encoder parameters, e.g. ``[cv2.IMWRITE_JPEG_QUALITY, 95]``.
        auto_mkdir: Create missing parent folders.

    Returns:
        True (failures raise).

    Raises:
        OSError: encoding or writing failed; the message names the file.
    """
    path = Path(file_path)
    if auto_mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", img, params or [])
    except cv2.error as exc:
        raise OSError(f"could not encode image for {path}: {exc}") from exc
    if not ok:
        raise OSError(f"could not encode image for {path}")
    try:
        path.write_bytes(buf.tobytes())
    except OSError as exc:
        raise OSError(f"could not write image file {path}: {exc}") from exc
    return True
