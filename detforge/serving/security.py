"""What the service refuses, and why: unsafe paths, non-images, decompression bombs and shapes
no detector can take.

Every refusal is a :class:`ServingError` that carries the HTTP status to answer with; the app
turns it into ``{"error": message}``. Messages name what the client sent, never a server path
or a Python object's repr. Nothing here imports a web framework, so the checks are usable (and
tested) on their own.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_ASPECT_RATIO",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_PIXELS_IN_FLIGHT",
    "DecodedImage",
    "ServingError",
    "decode_image",
    "read_image_header",
    "resolve_under_root",
]

#: Images with more pixels than this (64 megapixels) are refused before they are decoded.
DEFAULT_MAX_PIXELS = 64_000_000

#: Decoded pixels that all requests in progress may hold together (the service's
#: :class:`~detforge.serving.budget.Budget`): twice the largest image, so one 64-megapixel image
#: can be answered as a drawn PNG, which holds a second copy.
DEFAULT_MAX_PIXELS_IN_FLIGHT = 2 * DEFAULT_MAX_PIXELS

#: Images longer than this many times their width (or wider than their height) are refused: a
#: test pipeline that fits the long side to its scale would shrink the short side to nothing
#: (a 1x300 image at a 128-pixel scale is 0 pixels wide) and OpenCV's resize fails.
DEFAULT_MAX_ASPECT_RATIO = 100.0

# Most bytes in one path component and in a whole path on Linux (NAME_MAX, PATH_MAX).
_NAME_MAX, _PATH_MAX = 255, 4096
# ``<_io.BytesIO object at 0x7f...>``: what Pillow puts in some messages; clients need not see it
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


class ServingError(Exception):
    """A request the service refuses: ``status`` is the HTTP status, ``message`` says why.

    Example:
        >>> err = ServingError(415, "not an image")
        >>> err.status, str(err)
        (415, 'not an image')
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _reason(exc: BaseException) -> str:
    """``Class: message`` of a decoder's exception, without object reprs."""
    return f"{exc.__class__.__name__}: {_OBJECT_REPR.sub('', str(exc))}"


def _shown(name: str, limit: int = 80) -> str:
    """``repr(name)``, shortened when long (a client's name, echoed back in an error)."""
    return repr(name) if len(name) <= limit else repr(name[:limit]) + f"... ({len(name)} chars)"


def resolve_under_root(root: str | os.PathLike[str], name: str) -> Path:
    """The real path of image ``name`` under ``root``, or a :class:`ServingError`.

    ``name`` must be a relative path without ``..`` components; after resolving symlinks the
    file must still lie inside the real path of ``root``.

    Raises:
        ServingError: 400 for an empty name, a NUL byte or a name longer than the file system
            takes; 403 for an absolute path, a ``..`` component, a path (or symlink) that leads
            outside ``root`` or a file that cannot be read; 404 when no such file exists. The
            message names ``name``, never the server's path.

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
    shown = _shown(name)
    if "\x00" in name:
        raise ServingError(400, f"image {shown}: NUL bytes are not allowed in a path")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith("~"):
        raise ServingError(
            403, f"image {shown}: absolute paths are refused; give a path relative to the root"
        )
    if ".." in posix.parts or ".." in windows.parts:
        raise ServingError(
            403, f"image {shown}: '..' is not allowed; give a path inside the image root"
        )
    encoded = os.fsencode(name)
    if len(encoded) > _PATH_MAX or any(len(part) > _NAME_MAX for part in encoded.split(b"/")):
        raise ServingError(
            400,
            f"image {shown}: the path is too long (at most {_NAME_MAX} bytes a component, "
            f"{_PATH_MAX} in all)",
        )
    real_root = Path(os.path.realpath(root))
    try:
        target = Path(os.path.realpath(real_root / posix))
        if not target.is_relative_to(real_root):
            raise ServingError(403, f"image {shown}: the path leads outside the image root")
        is_file = target.is_file()
    except OSError as exc:  # ENAMETOOLONG, EACCES...: its message holds the server's path
        raise ServingError(403, f"image {shown}: cannot be opened ({exc.strerror})") from None
    if not is_file:
        raise ServingError(404, f"image {shown}: no such file under the image root")
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


def read_image_header(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> tuple[int, int, str]:
    """``(width, height, format)`` read from the header only; nothing is decoded.

    Raises:
        ServingError: 400 for empty data, 415 when Pillow does not recognise an image, 413
            when ``width * height > max_pixels`` (a decompression bomb: a small file that
            would need gigabytes once decoded), 422 when one side is more than
            ``max_aspect_ratio`` times the other.

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
    except UnidentifiedImageError:
        raise ServingError(
            415, f"not a readable image ({len(data)} bytes): the format is not recognised"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ServingError(
            415, f"not a readable image ({len(data)} bytes): {_reason(exc)}"
        ) from None
    if width * height > max_pixels:
        raise ServingError(
            413,
            f"image too large: {width}x{height} = {width * height} pixels, "
            f"the limit is {max_pixels} pixels",
        )
    if width <= 0 or height <= 0:
        raise ServingError(415, f"image has an empty size {width}x{height}")
    if max(width, height) > max_aspect_ratio * min(width, height):
        raise ServingError(
            422,
            f"image {width}x{height} is too narrow: one side is over {max_aspect_ratio:g} "
            "times the other",
        )
    return width, height, fmt


def decode_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> DecodedImage:
    """Check the header with :func:`read_image_header`, then decode to ``uint8`` BGR.

    OpenCV decodes (applying the EXIF orientation, as browsers do); formats it lacks (GIF, ...)
    are decoded with Pillow. Grey and 16-bit images become 8-bit 3-channel images. An image
    that decodes to more pixels than its header declares is refused (415), so a caller may
    budget memory by the header's size.

    Example:
        >>> import cv2, numpy as np
        >>> png = cv2.imencode('.png', np.full((30, 40, 3), 7, np.uint8))[1].tobytes()
        >>> decoded = decode_image(png)
        >>> decoded.width, decoded.height, int(decoded.img[0, 0, 0])
        (40, 30, 7)
    """
    width, height, fmt = read_image_header(data, max_pixels, max_aspect_ratio)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                rgb = ImageOps.exif_transpose(image).convert("RGB")
                img = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        except (OSError, ValueError, SyntaxError) as exc:
            raise ServingError(415, f"{fmt} image could not be decoded: {_reason(exc)}") from None
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise ServingError(415, f"{fmt} image decoded to an unusable shape {img.shape}")
    if img.shape[0] * img.shape[1] > width * height:
        raise ServingError(
            415,
            f"{fmt} image decoded to {img.shape[1]}x{img.shape[0]} pixels, more than its "
            f"header's {width}x{height}",
        )
    return DecodedImage(img=img, format=fmt)
