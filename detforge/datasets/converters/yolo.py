"""YOLO txt labels (``cls cx cy w h``, normalised) → COCO json.

Layout (Ultralytics/darknet): each image ``<img_dir>/<rel>.jpg`` has its labels in
``<labels_dir>/<rel>.txt``, one object per line. By default ``labels_dir`` is ``img_dir`` with its
last ``images`` folder replaced by ``labels`` (``coco8/images/train`` → ``coco8/labels/train``), or
``img_dir`` itself when the path has no ``images`` folder.

A line is either a box ``cls cx cy w h`` or a polygon ``cls x1 y1 x2 y2 ... xn yn`` (n ≥ 3, the
Ultralytics segment format); all coordinates are fractions of the image width/height (read from the
image file, EXIF rotation applied). A box becomes ``bbox = [(cx - w/2) W, (cy - h/2) H, w W, h H]``
(clipped to the image), ``area = bbox w * h``; a polygon becomes ``segmentation`` in pixels, its
bounding box, and its (shoelace) area. Class ``k`` gets category id ``k + 1``.

Dropped and reported: malformed lines, class ids outside ``[0, len(classes))``, coordinates outside
``[0, 1]``, boxes with zero width or height, unreadable label files and label files with no image.
Images without a label file are kept as images without objects (counted in ``notes``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from detforge.datasets.converters._coco import (
    IMAGE_EXTENSIONS,
    CocoBuilder,
    ConversionResult,
    finish,
    image_size,
    progress,
    read_class_names,
)
from detforge.datasets.issues import DataIssues, DatasetError
from detforge.utils.image import ImageLoadError

__all__ = ["default_labels_dir", "parse_yolo_line", "yolo_to_coco"]

logger = logging.getLogger("detforge")


def default_labels_dir(img_dir: str | os.PathLike[str]) -> Path:
    """``img_dir`` with its last ``images`` component replaced by ``labels`` (else ``img_dir``).

    Example:
        >>> default_labels_dir('coco8/images/train').as_posix()
        'coco8/labels/train'
    """
    parts = Path(img_dir).parts
    if "images" not in parts:
        return Path(img_dir)
    i = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:i], "labels", *parts[i + 1 :])


def parse_yolo_line(line: str, num_classes: int) -> tuple[int, list[float]] | str:
    """``(class_index, coordinates)`` for one label line, or the kind of problem as a string.

    Example:
        >>> parse_yolo_line('3 0.5 0.5 0.2 0.4', 80)
        (3, [0.5, 0.5, 0.2, 0.4])
        >>> parse_yolo_line('3 0.5 0.5 0.2', 80)
        'malformed lines'
        >>> parse_yolo_line('80 0.5 0.5 0.2 0.4', 80)
        'class ids out of range'
    """
    tokens = line.split()
    if not (len(tokens) == 5 or (len(tokens) >= 7 and len(tokens) % 2 == 1)):
        return "malformed lines"
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        return "malformed lines"
    if not all(math.isfinite(v) for v in values) or not values[0].is_integer():
        return "malformed lines"
    cls = int(values[0])
    if not 0 <= cls < num_classes:
        return "class ids out of range"
    coords = values[1:]
    if not all(0.0 <= v <= 1.0 for v in coords):
        return "coordinates outside [0, 1]"
    return cls, coords


def _box(coords: list[float], width: int, height: int) -> tuple[list[float], float, None]:
    cx, cy, w, h = coords
    x1, x2 = max((cx - w / 2) * width, 0.0), min((cx + w / 2) * width, float(width))
    y1, y2 = max((cy - h / 2) * height, 0.0), min((cy + h / 2) * height, float(height))
    return [x1, y1, x2 - x1, y2 - y1], (x2 - x1) * (y2 - y1), None


def _polygon(
    coords: list[float], width: int, height: int
) -> tuple[list[float], float, list[float]]:
    xs = [x * width for x in coords[0::2]]
    ys = [y * height for y in coords[1::2]]
    area = 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))  # shoelace
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    flat = [c for point in zip(xs, ys, strict=True) for c in point]
    return bbox, area, flat


def yolo_to_coco(
    img_dir: str | os.PathLike[str],
    classes: Sequence[str] | str | os.PathLike[str],
    out_file: str | os.PathLike[str] | None = None,
    *,
    labels_dir: str | os.PathLike[str] | None = None,
    check_images: bool = False,
    strict: bool = False,
) -> ConversionResult:
    """Convert a YOLO-format image folder and its label files to a COCO dict.

    Args:
        img_dir: Folder of images (searched recursively); ``file_name`` is relative to it.
        classes: Class names in index order, a text file with one name per line, or a YOLO data
            ``.yaml`` with ``names``.
        out_file: Json file to write, or ``None`` to only return the dict.
        labels_dir: Folder of the ``.txt`` label files (see :func:`default_labels_dir`).
        check_images: Decode every image fully (finds truncated files; slower).
        strict: Raise on the first problem instead of dropping it.

    Example:
        >>> import tempfile, pathlib, numpy as np, cv2
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = cv2.imwrite(str(d / 'a.png'), np.zeros((50, 100, 3), np.uint8))
        >>> _ = (d / 'a.txt').write_text('1 0.5 0.5 0.2 0.4\\n')
        >>> res = yolo_to_coco(d, ['cat', 'dog'])
        >>> res.data['annotations'][0]['bbox'], res.data['annotations'][0]['category_id']
        ([40.0, 15.0, 20.0, 20.0], 2)
    """
    root = Path(img_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    label_root = Path(labels_dir) if labels_dir is not None else default_labels_dir(root)
    if not label_root.is_dir():
        raise FileNotFoundError(f"label folder not found: {label_root} (set labels_dir)")
    names = read_class_names(classes)
    images = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not images:
        raise DatasetError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    issues = DataIssues(f"yolo({root})", strict=strict)
    builder = CocoBuilder(names)
    used_labels: set[Path] = set()
    unlabelled = 0
    for path in progress(images, desc=root.name or str(root)):
        rel = path.relative_to(root)
        label_file = (label_root / rel).with_suffix(".txt")
        used_labels.add(label_file.resolve())
        try:
            width, height = image_size(path, decode=check_images)
        except ImageLoadError as exc:
            issues.add("images that cannot be opened", rel.as_posix(), str(exc))
            continue
        image_id = builder.add_image(rel.as_posix(), width, height)
        if not label_file.is_file():
            unlabelled += 1
            continue
        try:
            lines = label_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            issues.add("label files that cannot be read", label_file.name, str(exc))
            continue
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            _add_line(
                builder,
                image_id,
                line,
                (width, height),
                len(names),
                issues,
                f"{label_file.name}:{lineno}",
            )
    _report_orphans(root, label_root, used_labels, classes, issues)
    result = finish(builder, issues, out_file)
    if unlabelled:
        note = f"{unlabelled} images have no label file (kept as images without objects)"
        logger.info("%s: %s", issues.source, note)
        result.notes.append(note)
    return result


def _add_line(
    builder: CocoBuilder,
    image_id: int,
    line: str,
    size: tuple[int, int],
    num_classes: int,
    issues: DataIssues,
    where: str,
) -> None:
    parsed = parse_yolo_line(line, num_classes)
    if isinstance(parsed, str):
        issues.add(parsed, where, repr(line.strip()[:80]))
        return
    cls, coords = parsed
    convert = _box if len(coords) == 4 else _polygon
    bbox, area, segmentation = convert(coords, *size)
    if bbox[2] <= 0 or bbox[3] <= 0:
        issues.add("boxes with zero width or height", where, repr(line.strip()[:80]))
        return
    builder.add_annotation(
        image_id,
        cls + 1,
        bbox,
        area=area,
        segmentation=None if segmentation is None else [segmentation],
    )


def _report_orphans(
    img_root: Path,
    label_root: Path,
    used: set[Path],
    classes: object,
    issues: DataIssues,
) -> None:
    """Label files that no image uses (not checked when labels sit beside the images)."""
    if label_root.resolve() == img_root.resolve():
        return
    skip = {Path(classes).resolve()} if isinstance(classes, str | os.PathLike) else set()
    for txt in sorted(label_root.rglob("*.txt")):
        resolved = txt.resolve()
        if resolved not in used and resolved not in skip:
            issues.add("label files without an image", txt.relative_to(label_root).as_posix())
