"""VGG Image Annotator (VIA) polygons → COCO json with polygon masks (the balloon tutorial).

Follows the conversion in MMDetection v2's "train with customized datasets" tutorial (balloon):
for a polygon with points ``(x_i, y_i)``

- ``segmentation = [[x_0 + 0.5, y_0 + 0.5, x_1 + 0.5, ...]]`` (VIA stores pixel indices; +0.5
  puts the vertices on pixel centres),
- ``bbox = [min x, min y, max x - min x, max y - min y]`` from the unshifted points,
- ``area = (max x - min x) * (max y - min y)`` (the box area, as the tutorial computes it),
- ``iscrowd = 0``.

VIA ``rect`` regions are accepted too (``bbox = [x, y, width, height]``, the rectangle as polygon);
other shapes, polygons with fewer than 3 points or mismatched coordinate lists, zero-size regions,
images that cannot be opened and regions of unknown classes are reported and dropped. Both VIA 1.x
(``{key: {'filename', 'regions': {...}}}``) and 2.x exports (``regions`` a list, or a project file
with ``_via_img_metadata``) are read. Ids start at 1 (the tutorial uses 0).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detforge.datasets.converters._coco import (
    CocoBuilder,
    ConversionResult,
    finish,
    image_size,
    progress,
    read_class_names,
)
from detforge.datasets.issues import DataIssues, DatasetError
from detforge.utils.image import ImageLoadError

__all__ = ["via_to_coco"]


def via_to_coco(
    ann_file: str | os.PathLike[str],
    out_file: str | os.PathLike[str] | None = None,
    *,
    img_dir: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | str | os.PathLike[str] = ("balloon",),
    class_attribute: str | None = None,
    strict: bool = False,
) -> ConversionResult:
    """Convert a VIA json export to a COCO dict.

    Args:
        ann_file: The VIA json (e.g. ``balloon/train/via_region_data.json``).
        out_file: Json file to write, or ``None`` to only return the dict.
        img_dir: Folder of the images (default: the folder of ``ann_file``); sizes are read
            from the files and ``file_name`` is the VIA ``filename``.
        classes: Class names (or a file of names). With one class every region gets it.
        class_attribute: With several classes, the region attribute holding the class name
            (``region_attributes[class_attribute]``; a string, or a checkbox dict with one
            ticked name).
        strict: Raise on the first problem instead of dropping it.

    Example:
        >>> import tempfile, pathlib, json, numpy as np, cv2
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = cv2.imwrite(str(d / 'a.jpg'), np.zeros((20, 30, 3), np.uint8))
        >>> region = {'shape_attributes': {'name': 'polygon', 'all_points_x': [2, 10, 4],
        ...           'all_points_y': [3, 5, 9]}, 'region_attributes': {}}
        >>> _ = (d / 'via.json').write_text(json.dumps(
        ...     {'a.jpg1': {'filename': 'a.jpg', 'regions': {'0': region}}}))
        >>> ann = via_to_coco(d / 'via.json').data['annotations'][0]
        >>> ann['bbox'], ann['area'], ann['segmentation']
        ([2, 3, 8, 6], 48, [[2.5, 3.5, 10.5, 5.5, 4.5, 9.5]])
    """
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"VIA annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not a json file: {exc}") from exc
    if isinstance(data, dict) and "_via_img_metadata" in data:
        data = data["_via_img_metadata"]
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a VIA export (a dict of images), got {type(data).__name__}"
        )
    names = read_class_names(classes)
    if len(names) > 1 and not class_attribute:
        raise DatasetError(
            f"{len(names)} classes given: class_attribute must name the region attribute that "
            "holds each region's class"
        )
    root = Path(img_dir) if img_dir is not None else path.parent
    issues = DataIssues(f"via({path})", strict=strict)
    builder = CocoBuilder(names)
    for key, entry in progress(list(data.items()), desc=path.name):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("filename"), str):
            issues.add("entries without a filename", str(key))
            continue
        filename = entry["filename"]
        if builder.has_image(filename):
            issues.add("images listed twice", filename, f"key {key!r}")
            continue
        try:
            width, height = image_size(root / filename)
        except ImageLoadError as exc:
            issues.add("images that cannot be opened", filename, str(exc))
            continue
        image_id = builder.add_image(filename, width, height)
        regions = entry.get("regions") or []
        if isinstance(regions, Mapping):
            regions = list(regions.values())
        for region in regions:
            _add_region(builder, image_id, filename, region, names, class_attribute, issues)
    if not builder.images:
        raise DatasetError(f"{path}: no usable images ({issues.summary()})")
    return finish(builder, issues, out_file)


def _add_region(
    builder: CocoBuilder,
    image_id: int,
    filename: str,
    region: Any,
    names: Sequence[str],
    class_attribute: str | None,
    issues: DataIssues,
) -> None:
    shape = region.get("shape_attributes") if isinstance(region, Mapping) else None
    if not isinstance(shape, Mapping):
        issues.add("regions without shape_attributes", filename)
        return
    name = names[0] if len(names) == 1 else _region_class(region, class_attribute or "")
    if name is None or name not in names:
        issues.add("regions of unknown classes", filename, repr(name))
        return
    geometry = _polygon(shape) if shape.get("name") != "rect" else _rect(shape)
    if isinstance(geometry, str):
        issues.add(geometry, filename, str(dict(shape))[:120])
        return
    bbox, segmentation = geometry
    if bbox[2] <= 0 or bbox[3] <= 0:
        issues.add("regions with zero width or height", filename, f"bbox {bbox}")
        return
    builder.add_annotation(
        image_id,
        builder.category_id(name),
        bbox,
        area=bbox[2] * bbox[3],
        segmentation=[segmentation],
    )


def _region_class(region: Mapping[str, Any], attribute: str) -> str | None:
    value = (region.get("region_attributes") or {}).get(attribute)
    if isinstance(value, Mapping):
        ticked = [k for k, v in value.items() if v]
        return ticked[0] if len(ticked) == 1 else None
    return value if isinstance(value, str) else None


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        return None
    return list(values)


def _polygon(shape: Mapping[str, Any]) -> tuple[list[float], list[float]] | str:
    if shape.get("name", "polygon") != "polygon":
        return f"regions of unsupported shape {shape.get('name')!r}"
    xs, ys = _numbers(shape.get("all_points_x")), _numbers(shape.get("all_points_y"))
    if xs is None or ys is None or len(xs) != len(ys):
        return "polygons with missing or mismatched coordinate lists"
    if len(xs) < 3:
        return "polygons with fewer than 3 points"
    x_min, y_min, x_max, y_max = min(xs), min(ys), max(xs), max(ys)
    flat = [c + 0.5 for point in zip(xs, ys, strict=True) for c in point]
    return [x_min, y_min, x_max - x_min, y_max - y_min], flat


def _rect(shape: Mapping[str, Any]) -> tuple[list[float], list[float]] | str:
    values = _numbers([shape.get(k) for k in ("x", "y", "width", "height")])
    if values is None:
        return "rects with missing or non-numeric x, y, width, height"
    x, y, w, h = values
    return [x, y, w, h], [x, y, x + w, y, x + w, y + h, x, y + h]
