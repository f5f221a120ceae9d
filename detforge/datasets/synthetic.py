"""A deterministic synthetic detection dataset in COCO format: circles, squares and triangles.

The classes are shapes (:data:`CLASSES` by default; any names from :data:`SHAPES`, e.g.
``('rectangle', 'ellipse')`` for axis-aligned ones). Each image has a smooth random background
with noise, clutter that is *not* an object (line segments, crosses, open arcs and dots behind
the objects, a few thin lines in front of them) and 1 to ``max_objects`` filled shapes of random
colour, size and rotation that may overlap. A placement that would leave an earlier shape less
than half visible is retried elsewhere, so every annotated object stays recognisable.
Annotations follow COCO: ``bbox`` ``[x, y, w, h]`` and ``area`` of the *visible* pixels,
``segmentation`` the visible mask as compressed RLE, ``iscrowd=0``. The class is carried by the
shape alone (colours are random for every class).

Every image is drawn from its own random stream seeded by ``(seed, split, index)``, so the
training images do not change when ``num_val`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detforge.structures.masks import rle_encode

__all__ = ["CLASSES", "SHAPES", "SyntheticObject", "make_synthetic_coco", "render_image"]

#: Class names in label order.
CLASSES = ("circle", "square", "triangle")

_SPLITS = {"train": 0, "val": 1}
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly
_MIN_VISIBLE = 0.5  # an earlier shape must keep at least this share of its pixels visible


class SyntheticObject:
    """One annotated shape of a rendered image.

    Attributes:
        label: Index into the class names the image was rendered with.
        mask: ``bool`` array ``[H, W]`` of its visible pixels.
        full_area: Pixels of the whole shape as drawn, before later shapes and the thin
            clutter lines in front covered parts of it (without those lines, ``mask`` keeps
            at least half of them).
    """

    __slots__ = ("full_area", "label", "mask")

    def __init__(self, label: int, mask: np.ndarray, full_area: int) -> None:
        self.label = label
        self.mask = mask
        self.full_area = full_area

    def bbox(self) -> list[float]:
        """COCO ``[x, y, w, h]`` of the visible pixels."""
        ys, xs = np.nonzero(self.mask)
        x1, y1 = int(xs.min()), int(ys.min())
        return [float(x1), float(y1), float(xs.max() + 1 - x1), float(ys.max() + 1 - y1)]


def _colour(rng: np.random.Generator, value: tuple[float, float]) -> tuple[int, int, int]:
    """A random BGR colour with HSV value in ``value`` (and any hue and saturation)."""
    hsv = np.array(
        [[[rng.integers(0, 180), rng.integers(60, 256), int(255 * rng.uniform(*value))]]],
        dtype=np.uint8,
    )
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    start = np.array(_colour(rng, (0.05, 0.4)), dtype=np.float32)
    end = np.array(_colour(rng, (0.05, 0.4)), dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = np.clip(0.5 + (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle), 0, 1)
    return start + (end - start) * t[..., None]


def _circle(rng: np.random.Generator, r: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    return angles, np.full_like(angles, 0.8 * r)


def _square(rng: np.random.Generator, r: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    return theta + np.arange(4) * math.pi / 2, np.full(4, r)


def _triangle(rng: np.random.Generator, r: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    angles = theta + np.arange(3) * 2 * math.pi / 3 + rng.uniform(-0.25, 0.25, size=3)
    return angles, r * rng.uniform(0.85, 1.0, size=3)


def _ellipse(rng: np.random.Generator, r: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    a, b = r * rng.uniform(0.45, 1.0, size=2)  # axis-aligned semi-axes
    return angles, a * b / np.hypot(b * np.cos(angles), a * np.sin(angles))


def _rectangle(rng: np.random.Generator, r: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    half = math.atan(rng.uniform(0.4, 2.5))  # axis-aligned, random aspect ratio
    angles = np.array([half, math.pi - half, math.pi + half, -half])
    return angles, np.full(4, r)


#: The shapes a class can be, by name: ``(rng, circumradius, rotation) -> (angles, radii)``.
SHAPES = dict(
    circle=_circle, square=_square, triangle=_triangle, ellipse=_ellipse, rectangle=_rectangle
)


def _shape_polygon(rng: np.random.Generator, shape: str, size: int) -> np.ndarray:
    """Vertices ``[K, 2]`` (float, pixels) of a random ``shape`` lying inside the image."""
    radius = rng.uniform(0.06, 0.19) * size  # circumradius
    margin = radius + 1
    cx, cy = rng.uniform(margin, size - margin, size=2)
    angles, radii = SHAPES[shape](rng, radius, rng.uniform(0, 2 * math.pi))
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _fixed(points: np.ndarray) -> list[np.ndarray]:
    return [np.round(points * (1 << _SHIFT)).astype(np.int32)]


def _pt(v: np.ndarray) -> tuple[int, int]:
    return int(v[0]), int(v[1])


def _clutter(rng: np.random.Generator, img: np.ndarray, size: int) -> None:
    """Distractors behind the objects: segments, crosses, open arcs and dots."""
    for _ in range(int(rng.integers(2, 7))):
        p, q = rng.integers(0, size, size=(2, 2))
        cv2.line(
            img, _pt(p), _pt(q), _colour(rng, (0.3, 1.0)), int(rng.integers(1, 3)), cv2.LINE_AA
        )
    for _ in range(int(rng.integers(0, 4))):
        c = rng.uniform(0, size, size=2)
        arm = rng.uniform(3, 8)
        a = rng.uniform(0, math.pi)
        d = arm * np.array([math.cos(a), math.sin(a)])
        e = arm * np.array([-math.sin(a), math.cos(a)])
        colour = _colour(rng, (0.3, 1.0))
        for v in (d, e):
            cv2.line(img, _pt(c - v), _pt(c + v), colour, 2, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 3))):
        centre = _pt(rng.integers(0, size, size=2))
        axes = _pt(rng.integers(6, max(7, size // 5), size=2))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(
            img,
            centre,
            axes,
            0,
            start,
            start + rng.uniform(60, 200),
            _colour(rng, (0.3, 1.0)),
            int(rng.integers(1, 3)),
            cv2.LINE_AA,
        )
    for _ in range(int(rng.integers(0, 9))):
        dot = _pt(rng.integers(0, size, size=2))
        cv2.circle(img, dot, int(rng.integers(1, 3)), _colour(rng, (0.3, 1.0)), -1, cv2.LINE_AA)


def render_image(
    rng: np.random.Generator,
    size: int = 128,
    max_objects: int = 6,
    clutter: bool = True,
    classes: Sequence[str] = CLASSES,
) -> tuple[np.ndarray, list[SyntheticObject]]:
    """Draw one ``size x size`` BGR image and its objects (see the module docstring).

    Args:
        rng: The random stream (the image is a function of its state).
        size: Image side in pixels (at least 32).
        max_objects: The image holds 1 to ``max_objects`` shapes (fewer when no placement
            keeps every shape at least half visible).
        clutter: Draw distractors (``False``: a plain background with light noise).
        classes: Shape names from :data:`SHAPES`, in label order.

    Returns:
        ``(image uint8 [size, size, 3], objects)``; every object has at least one visible pixel.

    Example:
        >>> img, objs = render_image(np.random.default_rng(0), size=64, max_objects=3)
        >>> img.shape, 1 <= len(objs) <= 3, objs[0].mask.shape
        ((64, 64, 3), True, (64, 64))
    """
    if size < 32:
        raise ValueError(f"render_image: size must be >= 32 pixels, got {size}")
    if max_objects < 1:
        raise ValueError(f"render_image: max_objects must be >= 1, got {max_objects}")
    unknown = [c for c in classes if c not in SHAPES]
    if unknown or not classes:
        raise ValueError(f"render_image: classes must be shapes from {list(SHAPES)}, got {classes}")
    if clutter:
        img = _background(rng, size).astype(np.uint8)
    else:
        img = np.full((size, size, 3), _colour(rng, (0.05, 0.3)), dtype=np.uint8)
    if clutter:
        _clutter(rng, img, size)
    owner = np.full((size, size), -1, dtype=np.int32)  # which object each pixel shows
    full_area: list[int] = []
    labels: list[int] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(0, len(classes)))
        for _attempt in range(20):
            points = _fixed(_shape_polygon(rng, classes[label], size))
            shape = np.zeros((size, size), dtype=np.uint8)
            cv2.fillPoly(shape, points, 1, cv2.LINE_8, _SHIFT)
            covered = owner[shape.astype(bool)]
            visible_after = [
                np.count_nonzero(owner == k) - np.count_nonzero(covered == k)
                for k in range(len(labels))
            ]
            if all(v >= _MIN_VISIBLE * a for v, a in zip(visible_after, full_area, strict=True)):
                break
        else:
            continue  # no acceptable place: leave this shape out
        cv2.fillPoly(img, points, _colour(rng, (0.45, 1.0)), cv2.LINE_AA, _SHIFT)
        owner[shape.astype(bool)] = len(labels)
        full_area.append(int(shape.sum()))
        labels.append(label)
    if clutter:
        for _ in range(int(rng.integers(0, 3))):  # thin lines in front of the objects
            p, q = rng.integers(0, size, size=(2, 2))
            line = np.zeros((size, size), dtype=np.uint8)
            cv2.line(line, _pt(p), _pt(q), 1, 1)
            cv2.line(img, _pt(p), _pt(q), _colour(rng, (0.3, 1.0)), 1)
            owner[line.astype(bool)] = -1
    noise = rng.normal(0, 6 if clutter else 3, size=img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    objects = [SyntheticObject(label, owner == k, full_area[k]) for k, label in enumerate(labels)]
    return img, [obj for obj in objects if obj.mask.any()]


def make_synthetic_coco(
    out_dir: str | Path,
    num_train: int = 480,
    num_val: int = 60,
    size: int = 128,
    max_objects: int = 6,
    seed: int = 0,
    clutter: bool = True,
    classes: Sequence[str] = CLASSES,
) -> dict[str, Path]:
    """Write the dataset: ``out_dir/images/{train,val}_NNNN.png``, ``train.json``, ``val.json``.

    Args:
        out_dir: Output folder (created).
        num_train: Training images.
        num_val: Validation images.
        size: Image side in pixels.
        max_objects: Most shapes per image.
        seed: Dataset seed; the same arguments always give byte-identical files.
        clutter: Draw distractors (``False``: plain backgrounds).
        classes: Shape names from :data:`SHAPES`, in label order (the COCO categories).

    Returns:
        ``dict(root, images, train, val)`` paths.

    Example:
        >>> import tempfile, json
        >>> paths = make_synthetic_coco(tempfile.mkdtemp(), num_train=2, num_val=1, size=64)
        >>> coco = json.loads(paths['train'].read_text())
        >>> len(coco['images']), [c['name'] for c in coco['categories']]
        (2, ['circle', 'square', 'triangle'])
    """
    from detforge.datasets.converters._coco import CocoBuilder, write_json

    for name, value in (("num_train", num_train), ("num_val", num_val)):
        if value < 0:
            raise ValueError(f"make_synthetic_coco: {name} must be >= 0, got {value}")
    root = Path(out_dir)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = dict(root=root, images=images)
    bar = tqdm(total=num_train + num_val, desc="synthetic images", unit="img", leave=False)
    for split, count in (("train", num_train), ("val", num_val)):
        builder = CocoBuilder(tuple(classes))
        for index in range(count):
            rng = np.random.default_rng([seed, _SPLITS[split], index])
            img, objects = render_image(rng, size, max_objects, clutter, classes)
            name = f"{split}_{index:04d}.png"
            if not cv2.imwrite(str(images / name), img):
                raise OSError(f"could not write {images / name}")
            image_id = builder.add_image(name, width=size, height=size)
            for obj in objects:
                builder.add_annotation(
                    image_id,
                    builder.category_id(classes[obj.label]),
                    obj.bbox(),
                    area=float(obj.mask.sum()),
                    segmentation=rle_encode(obj.mask, str_counts=True),
                )
            bar.update()
        paths[split] = write_json(builder.to_dict(), root / f"{split}.json")
    bar.close()
    meta = dict(
        classes=list(classes),
        num_train=num_train,
        num_val=num_val,
        size=size,
        max_objects=max_objects,
        seed=seed,
        clutter=clutter,
    )
    (root / "synthetic.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return paths
