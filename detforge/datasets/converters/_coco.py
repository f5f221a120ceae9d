"""Shared pieces of the converters: build, check and write COCO instances files.

Ids: every converter except ``cityscapes`` numbers images, annotations and categories with
consecutive integers **starting at 1** (MMDetection v2's converters start at 0). 1 is COCO's own
habit and it matters: pycocotools' ``COCOeval`` records "matched to ground truth id 0" and
"unmatched" the same way, so a ground-truth annotation with id 0 can never count as a true
positive. Labels in detforge come from the category *names* (their order in the json), never from
the id values, so v2 files and these load the same. The ``cityscapes`` converter keeps the
Cityscapes label ids (24 ... 33) for its categories, as v2 does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from detforge.datasets.issues import DataIssues, DatasetError
from detforge.utils.fileio import atomic_write
from detforge.utils.image import ImageLoadError, imread

__all__ = [
    "IMAGE_EXTENSIONS",
    "CocoBuilder",
    "ConversionResult",
    "image_size",
    "progress",
    "read_class_names",
    "validate_coco",
    "write_json",
    "write_pickle",
]

logger = logging.getLogger("detforge")

T = TypeVar("T")

#: File extensions (lower case, with the dot) that the folder-scanning converters treat as images.
IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp", ".mpo", ".dng")

_EXIF_ORIENTATION = 0x0112
_SHOWN = 5


@dataclass
class ConversionResult:
    """What one conversion produced.

    Attributes:
        data: The COCO dict (``images``, ``annotations``, ``categories``) or, for ``pkl``
            output, the v2 middle-format list.
        issues: Everything that was dropped, by kind (``issues.summary()`` is the one-line report).
        out_file: Where ``data`` was written, or ``None`` when it was only returned.
        notes: Things worth knowing that were not dropped (e.g. images without a label file).
    """

    data: Any
    issues: DataIssues
    out_file: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        return len(self.data["images"]) if isinstance(self.data, dict) else len(self.data)

    @property
    def num_annotations(self) -> int:
        if isinstance(self.data, dict):
            return len(self.data.get("annotations", []))
        return sum(len(d["ann"]["bboxes"]) + len(d["ann"]["bboxes_ignore"]) for d in self.data)

    def describe(self) -> str:
        """``'<out>: 205 images, 4,000 annotations'`` (the line the CLI prints)."""
        where = str(self.out_file) if self.out_file else self.issues.source
        text = f"{where}: {self.num_images} images, {self.num_annotations} annotations"
        if isinstance(self.data, dict):
            text += f", {len(self.data.get('categories', []))} categories"
        return text


class CocoBuilder:
    """Collects images and annotations into a COCO instances dict with ids from 1.

    Args:
        classes: Category names in label order; category ``i`` gets id ``i + 1`` unless
            ``category_ids`` is given.
        category_ids: Explicit category ids (same length as ``classes``).
        supercategory: Written into every category (v2's converters write ``'none'``).

    Example:
        >>> b = CocoBuilder(["cat", "dog"])
        >>> img = b.add_image("a.jpg", width=10, height=8)
        >>> b.add_annotation(img, b.category_id("dog"), [1, 2, 3, 4])
        1
        >>> coco = b.to_dict()
        >>> coco["annotations"][0]["area"], coco["categories"][1]
        (12.0, {'id': 2, 'name': 'dog', 'supercategory': 'none'})
    """

    def __init__(
        self,
        classes: Sequence[str],
        *,
        category_ids: Sequence[int] | None = None,
        supercategory: str = "none",
    ) -> None:
        names = _check_classes(classes)
        ids = list(range(1, len(names) + 1)) if category_ids is None else list(category_ids)
        if len(ids) != len(names) or len(set(ids)) != len(ids):
            raise DatasetError(f"category_ids {ids} must be {len(names)} distinct integers")
        self.categories = [
            dict(id=int(i), name=n, supercategory=supercategory)
            for i, n in zip(ids, names, strict=True)
        ]
        self._name_to_id = {n: int(i) for i, n in zip(ids, names, strict=True)}
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._file_names: set[str] = set()

    def category_id(self, name: str) -> int:
        """The id of category ``name`` (``KeyError`` naming the known classes otherwise)."""
        if name not in self._name_to_id:
            raise KeyError(f"unknown class {name!r}; classes are {list(self._name_to_id)}")
        return self._name_to_id[name]

    def has_image(self, file_name: str) -> bool:
        return file_name in self._file_names

    def add_image(self, file_name: str, width: int, height: int, **extra: Any) -> int:
        """Add one image and return its id (file names must be unique)."""
        if file_name in self._file_names:
            raise DatasetError(f"image {file_name!r} is listed twice")
        if int(width) <= 0 or int(height) <= 0:
            raise DatasetError(f"image {file_name!r} has size {width}x{height}")
        image_id = len(self.images) + 1
        self.images.append(
            dict(id=image_id, file_name=file_name, width=int(width), height=int(height), **extra)
        )
        self._file_names.add(file_name)
        return image_id

    def add_annotation(
        self,
        image_id: int,
        category_id: int,
        bbox: Sequence[float],
        *,
        area: float | None = None,
        iscrowd: int = 0,
        segmentation: Any = None,
        **extra: Any,
    ) -> int:
        """Add one annotation (``bbox`` is ``[x, y, w, h]``; ``area`` defaults to ``w * h``)."""
        box = [v if isinstance(v, int) else float(v) for v in bbox]
        if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
            raise DatasetError(f"image id {image_id}: invalid bbox [x, y, w, h] = {list(bbox)}")
        ann: dict[str, Any] = dict(
            id=len(self.annotations) + 1,
            image_id=int(image_id),
            category_id=int(category_id),
            bbox=box,
            area=float(box[2] * box[3]) if area is None else area,
            iscrowd=int(iscrowd),
        )
        if segmentation is not None:
            ann["segmentation"] = segmentation
        ann.update(extra)
        self.annotations.append(ann)
        return int(ann["id"])

    def to_dict(self, **top_level: Any) -> dict[str, Any]:
        """The COCO dict (``info``, ``images``, ``annotations``, ``categories`` + ``top_level``)."""
        coco: dict[str, Any] = dict(
            info=dict(description="converted by detforge"),
            images=self.images,
            annotations=self.annotations,
            categories=self.categories,
        )
        coco.update(top_level)
        return coco


def validate_coco(coco: Mapping[str, Any], source: str = "COCO dict") -> None:
    """Check a COCO instances dict before it is written.

    Checks: the three lists exist; ids are unique integers; each annotation names a known image
    and category, has a finite ``bbox`` ``[x, y, w, h]`` with ``w, h > 0``, ``area >= 0`` and
    ``iscrowd`` 0 or 1; images have a ``file_name`` and a positive size.

    Raises:
        DatasetError: listing the first problems found (and how many there are).

    Example:
        >>> validate_coco({"images": [], "annotations": [], "categories": []})
        >>> validate_coco({"images": [], "categories": []})
        Traceback (most recent call last):
        ...
        detforge.datasets.issues.DatasetError: COCO dict: missing key 'annotations'
    """
    problems: list[str] = []
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            what = "missing key" if key not in coco else "not a list:"
            raise DatasetError(f"{source}: {what} {key!r}")
    image_ids = _unique_ids(coco["images"], "image", problems)
    cat_ids = _unique_ids(coco["categories"], "category", problems)
    _unique_ids(coco["annotations"], "annotation", problems)
    for img in coco["images"]:
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            problems.append(f"image {img.get('id')}: no file_name")
        if not all(isinstance(img.get(k), int) and img[k] > 0 for k in ("width", "height")):
            problems.append(
                f"image {img.get('id')}: bad size {img.get('width')}x{img.get('height')}"
            )
    for ann in coco["annotations"]:
        where = f"annotation {ann.get('id')}"
        if ann.get("image_id") not in image_ids:
            problems.append(f"{where}: unknown image_id {ann.get('image_id')!r}")
        if ann.get("category_id") not in cat_ids:
            problems.append(f"{where}: unknown category_id {ann.get('category_id')!r}")
        box = ann.get("bbox")
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, int | float) and math.isfinite(v) for v in box)
            and box[2] > 0
            and box[3] > 0
        ):
            problems.append(f"{where}: bad bbox {box!r}")
        area = ann.get("area")
        if not isinstance(area, int | float) or not area >= 0:
            problems.append(f"{where}: bad area {area!r}")
        if ann.get("iscrowd", 0) not in (0, 1):
            problems.append(f"{where}: iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}")
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise DatasetError(f"{source}: invalid COCO data: " + "; ".join(problems[:_SHOWN]) + more)


def _unique_ids(items: list[Any], what: str, problems: list[str]) -> set[int]:
    ids: set[int] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            problems.append(f"{what} without an integer id: {str(item)[:80]}")
            continue
        if item["id"] in ids:
            problems.append(f"duplicate {what} id {item['id']}")
        ids.add(item["id"])
    return ids


def write_json(coco: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate a COCO dict and write it atomically as json; returns the path."""
    target = Path(path)
    validate_coco(coco, str(target))
    atomic_write(target, json.dumps(coco))
    return target


def write_pickle(data: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` atomically as a pickle (protocol 2, as mmcv dumps ``.pkl``)."""
    target = Path(path)
    atomic_write(target, pickle.dumps(data, protocol=2))
    return target


def read_class_names(classes: str | os.PathLike[str] | Sequence[str]) -> tuple[str, ...]:
    """Class names from a sequence, a text file (one per line) or a YOLO data ``.yaml``.

    A ``.yaml``/``.yml`` file must have ``names``: a list, or a dict ``{index: name}`` with
    indices ``0 .. n-1``.

    Example:
        >>> read_class_names(["cat", "dog"])
        ('cat', 'dog')
    """
    if isinstance(classes, str | os.PathLike):
        path = Path(classes)
        if not path.is_file():
            raise FileNotFoundError(f"class names file not found: {path}")
        if path.suffix.lower() in (".yaml", ".yml"):
            names = _names_from_yaml(path)
        else:
            text = path.read_text(encoding="utf-8")
            names = [line.strip() for line in text.splitlines() if line.strip()]
        return _check_classes(names, str(path))
    return _check_classes(classes)


def _names_from_yaml(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        keys = sorted(names)
        if keys != list(range(len(keys))):
            raise DatasetError(f"{path}: 'names' keys must be 0 .. {len(keys) - 1}, got {keys}")
        return [str(names[k]) for k in keys]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise DatasetError(f"{path}: expected a 'names' list or dict, got {type(names).__name__}")


def _check_classes(classes: Iterable[str], source: str = "classes") -> tuple[str, ...]:
    if isinstance(classes, str):
        raise DatasetError(
            f"{source}: expected a sequence of class names, got the string {classes!r}"
        )
    names = tuple(classes)
    if not names:
        raise DatasetError(f"{source}: no class names")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise DatasetError(f"{source}: class names must be non-empty strings, got {bad}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"{source}: class names listed twice: {dupes}")
    return names


def image_size(path: str | os.PathLike[str], *, decode: bool = False) -> tuple[int, int]:
    """``(width, height)`` of an image as detforge's loader will see it (EXIF rotation applied).

    Only the file header is read unless ``decode`` is true, in which case the whole image is
    decoded (slower, but catches truncated files).

    Raises:
        ImageLoadError: the file is missing or not a readable image (the message names it).
    """
    if decode:
        img = imread(path, flag="color")
        return int(img.shape[1]), int(img.shape[0])
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except FileNotFoundError:
        raise ImageLoadError(f"image file not found: {path}") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"not a readable image: {path} ({exc})") from exc
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return int(width), int(height)


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A tqdm progress bar on stderr, shown only when stderr is a terminal."""
    return iter(tqdm(items, desc=desc, total=total, unit="img", disable=None, leave=False))


def finish(
    builder_or_data: CocoBuilder | Any,
    issues: DataIssues,
    out_file: str | os.PathLike[str] | None,
    *,
    out_format: str = "coco",
    **top_level: Any,
) -> ConversionResult:
    """Turn collected data into a :class:`ConversionResult`, write it, and report drops."""
    data: Any = builder_or_data
    if isinstance(builder_or_data, CocoBuilder):
        data = builder_or_data.to_dict(**top_level)
    target: Path | None = None
    if out_file is None:
        if out_format == "coco":
            validate_coco(data, issues.source)
    elif out_format == "coco":
        target = write_json(data, out_file)  # validates first
    else:
        target = write_pickle(data, out_file)
    issues.report()
    return ConversionResult(data=data, issues=issues, out_file=target)
