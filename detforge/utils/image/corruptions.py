"""Image corruptions of the robustness benchmark (Michaelis et al., 2019).

The 15 benchmark corruptions (``gaussian_noise`` ... ``jpeg_compression``) and the 4 held-out
ones (``speckle_noise``, ``gaussian_blur``, ``spatter``, ``saturate``) at severities 1-5,
written with numpy and OpenCV (the ``imagecorruptions`` package needs ``opencv-python`` and an
old scikit-image, which clash with this toolbox's dependencies). Frost is drawn from a
procedural ice texture instead of the package's photos. Severity 0 returns the image unchanged.

Randomness is reproducible: without an explicit ``seed`` each call seeds its generator from the
image bytes, the corruption name and the severity, so the same image is always corrupted the
same way (results of ``detforge test-robustness`` do not depend on the run). The pipeline step
v2 calls ``Corrupt`` is :class:`detforge.datasets.transforms.corrupt.Corrupt`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import cv2
import numpy as np

from detforge.utils.image.colour import bgr2gray, bgr2hsv, hsv2bgr

__all__ = [
    "BENCHMARK_CORRUPTIONS",
    "CORRUPTIONS",
    "CORRUPTION_GROUPS",
    "HOLDOUT_CORRUPTIONS",
    "corrupt",
]

BENCHMARK_CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
HOLDOUT_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS = BENCHMARK_CORRUPTIONS + HOLDOUT_CORRUPTIONS
#: v2's ``--corruptions`` group names.
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "benchmark": BENCHMARK_CORRUPTIONS,
    "all": CORRUPTIONS,
    "noise": BENCHMARK_CORRUPTIONS[0:3],
    "blur": BENCHMARK_CORRUPTIONS[3:7],
    "weather": BENCHMARK_CORRUPTIONS[7:11],
    "digital": BENCHMARK_CORRUPTIONS[11:15],
    "holdout": HOLDOUT_CORRUPTIONS,
    "None": ("None",),
}

Rng = np.random.Generator
_Fn = Callable[[np.ndarray, int, Rng], np.ndarray]


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT)


def _noise_field(shape: tuple[int, int], rng: Rng, octaves: int, decay: float) -> np.ndarray:
    """Fractal (1/f-like) noise in [0, 1]: random grids of doubling resolution, summed."""
    h, w = shape
    field = np.zeros((h, w), np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 1)
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        field += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude /= decay
    field /= total
    return (field - field.min()) / max(float(field.max() - field.min()), 1e-6)


# --------------------------------------------------------------------------- noise
def gaussian_noise(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[s - 1]
    return x + rng.normal(0.0, sigma, x.shape)


def shot_noise(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    photons = (60, 25, 12, 5, 3)[s - 1]
    return rng.poisson(x * photons) / photons


def impulse_noise(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[s - 1]
    draw = rng.random(x.shape)
    out = x.copy()
    out[draw < amount / 2] = 0.0
    out[(draw >= amount / 2) & (draw < amount)] = 1.0
    return out


def speckle_noise(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    sigma = (0.15, 0.2, 0.35, 0.45, 0.6)[s - 1]
    return x + x * rng.normal(0.0, sigma, x.shape)


# --------------------------------------------------------------------------- blur
def gaussian_blur(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    return _blur(x, (1, 2, 3, 4, 6)[s - 1])


def defocus_blur(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[s - 1]
    size = np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(size, size)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    disk = _blur(disk / disk.sum(), alias)
    return cv2.filter2D(x, -1, disk / disk.sum(), borderType=cv2.BORDER_REFLECT)


def glass_blur(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    sigma, delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[
        s - 1
    ]
    h, w = x.shape[:2]
    out = _blur(x, sigma)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for _ in range(iterations):  # local pixel shuffling: every pixel from a random neighbour
        dx = rng.integers(-delta, delta + 1, (h, w)).astype(np.float32)
        dy = rng.integers(-delta, delta + 1, (h, w)).astype(np.float32)
        out = cv2.remap(
            out, grid_x + dx, grid_y + dy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT
        )
    return _blur(out, sigma)


def _line_kernel(length: int, sigma: float, angle: float) -> np.ndarray:
    size = 2 * length + 1
    kernel = np.zeros((size, size), np.float32)
    weights = np.exp(-(np.arange(length + 1) ** 2) / (2 * sigma**2))
    kernel[length, length:] = weights  # one-sided: the object moved towards +x
    rotation = cv2.getRotationMatrix2D((float(length), float(length)), angle, 1.0)
    rotated = np.asarray(cv2.warpAffine(kernel, rotation, (size, size)), np.float32)
    return rotated / max(float(rotated.sum()), 1e-6)


def motion_blur(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[s - 1]
    kernel = _line_kernel(radius, sigma, float(rng.uniform(-45, 45)))
    return cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _zoom(x: np.ndarray, factor: float) -> np.ndarray:
    h, w = x.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, factor)
    return cv2.warpAffine(x, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def zoom_blur(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    top, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[s - 1]
    factors = np.arange(1.0 + step, top, step)
    out = x.copy()
    for factor in factors:
        out += _zoom(x, float(factor))
    return out / (len(factors) + 1)


# --------------------------------------------------------------------------- weather
def snow(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, keep = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    )[s - 1]  # fmt: skip
    h, w = x.shape[:2]
    small = rng.normal(loc, scale, (max(1, int(h / zoom)), max(1, int(w / zoom))))
    flakes = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    flakes[flakes < threshold] = 0
    kernel = _line_kernel(radius, sigma, float(rng.uniform(-135, -45)))
    flakes = np.clip(cv2.filter2D(flakes, -1, kernel), 0, 1)[..., None]
    gray = bgr2gray(x)[..., None] * 1.5 + 0.5
    out = keep * x + (1 - keep) * np.maximum(x, gray)
    return out + flakes + np.rot90(flakes, 2)


def frost(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    keep, amount = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[s - 1]
    h, w = x.shape[:2]
    ridges = 1.0 - np.abs(2.0 * _noise_field((h, w), rng, octaves=7, decay=1.6) - 1.0)
    crystals = np.clip(ridges**3 * 1.2 + 0.1 * rng.random((h, w)), 0, 1).astype(np.float32)
    ice = np.stack([crystals * 1.0, crystals * 0.95, crystals * 0.85], axis=-1)  # BGR: bluish
    return keep * x + amount * ice


def fog(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    strength, decay = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[s - 1]
    peak = float(x.max())
    haze = _noise_field(x.shape[:2], rng, octaves=8, decay=decay)[..., None]
    return (x + strength * haze) * peak / (peak + strength)


def _hsv(x: np.ndarray) -> np.ndarray:
    return bgr2hsv(np.clip(x, 0, 1).astype(np.float32))


def brightness(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    hsv = _hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1], 0, 1)
    return hsv2bgr(hsv)


def saturate(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    factor, shift = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))[s - 1]
    hsv = _hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor + shift, 0, 1)
    return hsv2bgr(hsv)


# --------------------------------------------------------------------------- digital
def contrast(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    factor = (0.4, 0.3, 0.2, 0.1, 0.05)[s - 1]
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * factor + means


def elastic_transform(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    alpha, sigma = ((0.01, 0.04), (0.015, 0.03), (0.02, 0.025), (0.03, 0.02), (0.04, 0.015))[s - 1]
    h, w = x.shape[:2]
    side = min(h, w)
    fields = []
    for _ in range(2):
        field = _blur(rng.uniform(-1, 1, (h, w)).astype(np.float32), max(sigma * side, 1.0))
        fields.append(field / max(float(np.abs(field).max()), 1e-6) * alpha * side)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        x, grid_x + fields[0], grid_y + fields[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def pixelate(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]
    h, w = x.shape[:2]
    size = (max(1, int(w * factor)), max(1, int(h * factor)))
    small = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))


def jpeg_compression(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    quality = (25, 18, 15, 10, 7)[s - 1]
    img = np.clip(x * 255, 0, 255).round().astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("jpeg_compression: OpenCV could not encode the image")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("jpeg_compression: OpenCV could not decode the image")
    return np.asarray(decoded, np.float32) / 255.0


def spatter(x: np.ndarray, s: int, rng: Rng) -> np.ndarray:
    loc, scale, sigma, threshold, intensity, mud = (
        (0.65, 0.3, 4, 0.69, 0.6, False), (0.65, 0.3, 3, 0.68, 0.6, False),
        (0.65, 0.3, 2, 0.68, 0.5, False), (0.65, 0.3, 1, 0.65, 1.5, True),
        (0.67, 0.4, 1, 0.65, 1.5, True),
    )[s - 1]  # fmt: skip
    h, w = x.shape[:2]
    liquid = _blur(rng.normal(loc, scale, (h, w)).astype(np.float32), sigma)
    liquid[liquid < threshold] = 0
    mask = np.clip((liquid - threshold) / max(1 - threshold, 1e-6) * 3, 0, 1)[..., None]
    if mud:
        colour = np.array([20, 42, 63], np.float32) / 255.0  # BGR mud brown
        return x * (1 - mask * min(intensity, 1.0)) + colour * mask * min(intensity, 1.0)
    colour = np.array([238, 238, 175], np.float32) / 255.0  # BGR light water tint
    blurred = _blur(x, 3)
    return x * (1 - mask) + mask * (intensity * blurred + (1 - intensity) * colour)


_FUNCTIONS: dict[str, _Fn] = {
    fn.__name__: fn
    for fn in (
        gaussian_noise,
        shot_noise,
        impulse_noise,
        defocus_blur,
        glass_blur,
        motion_blur,
        zoom_blur,
        snow,
        frost,
        fog,
        brightness,
        contrast,
        elastic_transform,
        pixelate,
        jpeg_compression,
        speckle_noise,
        gaussian_blur,
        spatter,
        saturate,
    )
}


def _seed_for(image: np.ndarray, corruption: str, severity: int) -> int:
    digest = zlib.crc32(np.ascontiguousarray(image).tobytes())
    return zlib.crc32(f"{corruption}:{severity}".encode(), digest)


def corrupt(
    image: np.ndarray, corruption_name: str, severity: int = 1, seed: int | None = None
) -> np.ndarray:
    """Corrupt a ``uint8`` image ``[H, W, 3]`` (BGR, as loaded) with one named corruption.

    Args:
        image: The image; grey images ``[H, W]`` or ``[H, W, 1]`` are treated as 3 channels and
            returned in their own shape.
        corruption_name: One of :data:`CORRUPTIONS`.
        severity: 0 (identity) to 5.
        seed: Seed of the random parts; default derived from the image and the arguments.

    Returns:
        The corrupted ``uint8`` image of the input's shape.

    Example:
        >>> img = np.full((32, 32, 3), 128, np.uint8)
        >>> int(corrupt(img, 'contrast', 5)[0, 0, 0]), corrupt(img, 'fog', 0) is img
        (128, True)
    """
    if corruption_name not in _FUNCTIONS:
        raise KeyError(
            f"unknown corruption {corruption_name!r}; choose from {', '.join(CORRUPTIONS)}"
        )
    if not isinstance(severity, int | np.integer) or not 0 <= severity <= 5:
        raise ValueError(f"corruption severity must be an integer in 0..5, got {severity!r}")
    if severity == 0:
        return image
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"corrupt: expected an [H, W, 3] image, got shape {image.shape}")
    shape = image.shape
    color = (
        image
        if image.ndim == 3 and shape[2] == 3
        else np.repeat(image.reshape(*shape[:2], 1), 3, 2)
    )
    rng = np.random.default_rng(
        _seed_for(image, corruption_name, int(severity)) if seed is None else seed
    )
    x = color.astype(np.float32) / 255.0
    out = _FUNCTIONS[corruption_name](x, int(severity), rng)
    result = np.clip(np.asarray(out, np.float32) * 255.0, 0, 255).round().astype(np.uint8)
    if result.shape != color.shape:  # pragma: no cover - guards the implementations above
        raise RuntimeError(
            f"{corruption_name} changed the image shape {color.shape} to {result.shape}"
        )
    return result if color is image else result[..., :1].reshape(shape)
