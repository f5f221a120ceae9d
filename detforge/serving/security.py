"""What the service refuses, and why: unsafe paths, non-images and decompression bombs.

Every refusal is a :class:`ServingError` that carries the HTTP status to answer with; the app
turns it into ``{"error": message}``. Nothing here imports a web framework, so the checks are
usable (and tested) on their own.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "ServingError",
    "decode_image",
    "read_image_header",
    "resolve_under_root",
]

#: Images with more pixels than this (64 megapixels) are refused before they are decoded.
DEFAULT_MAX_PIXELS = 64_000_000


class ServingError(Exception):
    """A request the service refuses: ``status`` is the HTTP status, ``message`` says why.

    Example:
        >>> err = ServingError(415, "not an image")
        >>> err.status, str(err)
        (415, 'not an image')
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_under_root(root: str | os.PathLike[str], name: str) -> Path:
    """The real path of image ``name`` under ``root``, or a :class:`ServingError`.

    ``name`` must be a relative path without ``..`` components; after resolving symlinks the
    file must still lie inside the real path of ``root``.

    Raises:
        ServingError: 400 for an empty name or a NUL byte; 403 for an absolute path, a ``..``
            component or a path (or symlink) that leads outside ``root``; 404 when no such
            file exists.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); _ = (root / 'a.png').write_bytes(b'x')
        >>> resolve_under_root(root, 'a.png') == (root / 'a.png').resolve()
        True
        >>> try:
        ...     resolve_under_root(root, '../etc/passwd')
        ... except ServingError as err:
        ...     print(err.status, err)
        403 image '../etc/passwd': '..' is not allowed; give a path inside the image root
    """
    if not name:
        raise ServingError(400, "missing image name: use ?image=RELATIVE/PATH under the root")
    if "\x00" in name:
        raise ServingError(400, f"image {name!r}: NUL bytes are not allowed in a path")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith("~"):
        raise ServingError(
            403, f"image {name!r}: absolute paths are refused; give a path relative to the root"
        )
    if ".." in posix.parts or ".." in windows.parts:
        raise ServingError(
            403, f"image {name!r}: '..' is not allowed; give a path inside the image root"
        )
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / posix))
    if not target.is_relative_to(real_root):
        raise ServingError(403, f"image {name!r}: the path leads outside the image root")
    if not target.is_file():
        raise ServingError(404, f"image {name!r}: no such file under the image root")
    return target


@dataclass(frozen=True)
class DecodedImage:
    """An image checked and decoded for the model: ``img`` is ``uint8 [H, W, 3]`` BGR."""

    img: np.ndarray
    format: str

    @property
    def width(self) -> int:
        return int(self.img.shape[1])

    @property
    def height(self) -> int:
        return int(self.img.shape[0])


def read_image_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int, str]:
    """``(width, height, format)`` read from the header only; nothing is decoded.

    Raises:
        ServingError: 400 for empty data, 415 when Pillow does not recognise an image, 413
            when ``width * height > max_pixels`` (a decompression bomb: a small file that
            would need gigabytes once decoded).

    Example:
        >>> import cv2, numpy as np
        >>> png = cv2.imencode('.png', np.zeros((30, 40, 3), np.uint8))[1].tobytes()
        >>> read_image_header(png)
        (40, 30, 'PNG')
    """
    if not data:
        raise ServingError(400, "empty body: send an image file (multipart field or raw bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                fmt = image.format or "unknown"
    except Image.DecompressionBombError as exc:
        raise ServingError(
            413, f"image too large: {exc} (this service's limit is {max_pixels} pixels)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ServingError(
            415, f"not a readable image ({len(data)} bytes): {exc.__class__.__name__}: {exc}"
        ) from None
    if width * height > max_pixels:
        raise ServingError(
            413,
            f"image too large: {width}x{height} = {width * height} pixels, "
            f"the limit is {max_pixels} pixels",
        )
    if width <= 0 or height <= 0:
        raise ServingError(415, f"image has an empty size {width}x{height}")
    return width, height, fmt


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Check the header with :func:`read_image_header`, then decode to ``uint8`` BGR.

    OpenCV decodes (applying the EXIF orientation, as browsers do); formats it lacks (GIF, ...)
    are decoded with Pillow. Grey and 16-bit images become 8-bit 3-channel images.

    Example:
        >>> import cv2, numpy as np
        >>> png = cv2.imencode('.png', np.full((30, 40, 3), 7, np.uint8))[1].tobytes()
        >>> decoded = decode_image(png)
        >>> decoded.width, decoded.height, int(decoded.img[0, 0, 0])
        (40, 30, 7)
    """
    _, _, fmt = read_image_header(data, max_pixels)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                rgb = ImageOps.exif_transpose(image).convert("RGB")
                img = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        except (OSError, ValueError, SyntaxError) as exc:
            raise ServingError(
                415, f"{fmt} image could not be decoded: {exc.__class__.__name__}: {exc}"
            ) from None
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise ServingError(415, f"{fmt} image decoded to an unusable shape {img.shape}")
    return DecodedImage(img=img, format=fmt)
