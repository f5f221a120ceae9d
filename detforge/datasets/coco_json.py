"""Reading a COCO instances json: parse it, check every entry, then index it with pycocotools.

pycocotools trusts its input: a missing key is a bare ``KeyError`` far from the file, a string
where a number belongs fails at evaluation time, an RLE whose counts overrun its size or a
polygon point at 1e12 makes its C code write out of bounds or allocate without limit. So the
json is checked here, once, entry by entry, before :class:`pycocotools.coco.COCO` sees it, and the
first bad entry is a :class:`DatasetError` naming the file and the entry
(``instances.json: annotations[3] (id 4): 'bbox' must be [x, y, w, h] ...``).

What each entry must be (everything else in the file is ignored, as pycocotools does):

- the file: a JSON object with an ``images`` list that is not empty, and ``annotations`` /
  ``categories`` lists when present; ids are integers, unique within their list.
- image: ``id``, ``file_name`` (a non-empty string), ``width`` and ``height`` (positive whole
  numbers whose product fits pycocotools' 32-bit mask sizes).
- category: ``id``, ``name`` (a non-empty string).
- annotation: ``id``, ``image_id``, ``category_id`` (integers), ``bbox`` (four numbers
  ``[x, y, w, h]``; non-finite ones are dropped and counted by the dataset, as are boxes outside
  the image and unknown ids), ``area`` (a number), ``iscrowd`` and ``ignore`` (0/1),
  ``segmentation`` (polygons of an even number of finite coordinates within one image size of
  the image, or an RLE of the image's size whose counts cover it exactly).

A missing ``iscrowd`` is taken as 0 and a missing ``area`` as ``w * h`` of the box (v2's loader
reads them that way; pycocotools' evaluation needs them), both counted as fixed.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pycocotools.coco import COCO

from detforge.datasets.issues import DataIssues, DatasetError

__all__ = ["read_coco"]

_SECTIONS = ("images", "annotations", "categories")
#: pycocotools keeps mask sizes and run lengths in 32-bit unsigned integers.
_MAX_PIXELS = 2**31 - 1
_SHOWN = 5


def read_coco(ann_file: str, issues: DataIssues | None = None) -> COCO:
    """Read, check and index a COCO instances json.

    Args:
        ann_file: Path of the json.
        issues: Where the repaired ``iscrowd``/``area`` fields are counted (strict mode raises).

    Returns:
        The indexed :class:`pycocotools.coco.COCO`.

    Raises:
        DatasetError: the file is not JSON, not a COCO instances object, or an entry is broken;
            the message names the file and the first bad entry.

    Example:
        >>> import json, tempfile
        >>> f = tempfile.NamedTemporaryFile('w', suffix='.json', delete=False)
        >>> json.dump({'images': [{'id': 1, 'file_name': 'a.jpg', 'width': 4, 'height': 3}],
        ...            'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1,
        ...                             'bbox': [0, 0, 2, '2']}],
        ...            'categories': [{'id': 1, 'name': 'cat'}]}, f); f.close()
        >>> read_coco(f.name)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        detforge.datasets.issues.DatasetError: ...json: annotations[0] (id 1): 'bbox' must be ...
    """
    data = _read_json(ann_file)
    _raise_first(_entry_problems(data), ann_file)
    _check_unique_ids(data, ann_file)
    _raise_first(_segmentation_problems(data), ann_file)
    _fill_defaults(data, issues)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _read_json(ann_file: str) -> dict[str, Any]:
    try:
        with open(ann_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise DatasetError(f"{ann_file}: cannot read the annotation file: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise DatasetError(f"{ann_file}: not a valid JSON file: {reason}") from exc
    if not isinstance(data, dict):
        raise DatasetError(
            f"{ann_file}: a COCO annotation file is a JSON object with 'images', 'annotations' "
            f"and 'categories', got a {type(data).__name__}"
        )
    return data


def _raise_first(problems: Iterator[str], ann_file: str) -> None:
    first = next(problems, None)
    if first is not None:
        more = sum(1 for _ in problems)
        tail = f" (and {more} more {'problem' if more == 1 else 'problems'})" if more else ""
        raise DatasetError(f"{ann_file}: {first}{tail}")


def _entry_problems(data: dict[str, Any]) -> Iterator[str]:
    """Every entry that is not what its list needs, in file order."""
    for section in _SECTIONS:
        value = data.get(section, [])
        if section == "images" and section not in data:
            yield "no 'images' list"
        elif not isinstance(value, list):
            yield f"'{section}' must be a list, got {_show(value)}"
    if not isinstance(data.get("images"), list):
        return
    if not data["images"]:
        yield "'images' is empty: there is nothing to load"
    for section, fields in (
        ("images", _IMAGE_FIELDS),
        ("categories", _CATEGORY_FIELDS),
        ("annotations", _ANNOTATION_FIELDS),
    ):
        for i, entry in enumerate(_as_list(data.get(section))):
            problem = _entry_problem(entry, fields)
            if (
                problem is None
                and section == "images"
                and entry["width"] * entry["height"] > _MAX_PIXELS
            ):
                problem = f"size {entry['width']}x{entry['height']} is too large for pycocotools"
            if problem is not None:
                yield _where(section, i, entry) + problem


def _segmentation_problems(data: dict[str, Any]) -> Iterator[str]:
    """Masks that cannot be rasterised for their image (entries and ids are valid by now)."""
    images = {
        img["id"]: (img["width"], img["height"], f"images[{i}]")
        for i, img in enumerate(data["images"])
    }
    for i, ann in enumerate(data.get("annotations", [])):
        size = images.get(ann["image_id"])
        if "segmentation" in ann and size is not None:
            problem = _segmentation_problem(ann["segmentation"], *size)
            if problem is not None:
                yield _where("annotations", i, ann) + problem


def _where(section: str, index: int, entry: Any) -> str:
    has_id = isinstance(entry, dict) and _is_int(entry.get("id"))
    return f"{section}[{index}]" + (f" (id {entry['id']}): " if has_id else ": ")


def _show(value: Any) -> str:
    text = json.dumps(value, allow_nan=True) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_size(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0 and value == int(value)


# field: (required, check, what it must be)
_Fields = dict[str, tuple[bool, Any, str]]
_ID = (True, _is_int, "an integer")
_IMAGE_FIELDS: _Fields = {
    "id": _ID,
    "file_name": (True, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "width": (True, _is_size, "a positive whole number"),
    "height": (True, _is_size, "a positive whole number"),
}
_CATEGORY_FIELDS: _Fields = {
    "id": _ID,
    "name": (True, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
}
_ANNOTATION_FIELDS: _Fields = {
    "id": _ID,
    "image_id": _ID,
    "category_id": _ID,
    "bbox": (
        True,
        lambda v: isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v),
        "[x, y, w, h], four numbers",
    ),
    "area": (False, _is_number, "a number"),
    "iscrowd": (False, lambda v: v in (0, 1) and not isinstance(v, float), "0 or 1"),
    "ignore": (False, lambda v: v in (0, 1) and not isinstance(v, float), "0 or 1"),
}


def _entry_problem(entry: Any, fields: _Fields) -> str | None:
    if not isinstance(entry, dict):
        return f"must be a JSON object, got {_show(entry)}"
    for key, (required, check, what) in fields.items():
        if key not in entry:
            if required:
                return f"no {key!r}"
        elif not check(entry[key]):
            return f"{key!r} must be {what}, got {_show(entry[key])}"
    return None


def _segmentation_problem(seg: Any, width: float, height: float, image: str) -> str | None:
    """Why ``seg`` cannot be rasterised for a ``width`` x ``height`` image, or None."""
    if isinstance(seg, list):
        for k, poly in enumerate(seg):
            if not isinstance(poly, list) or not all(_is_number(v) for v in poly):
                return f"'segmentation' polygon {k} must be a list of numbers, got {_show(poly)}"
            if len(poly) % 2:
                return f"'segmentation' polygon {k} has an odd number ({len(poly)}) of coordinates"
            for x, y in zip(poly[0::2], poly[1::2], strict=True):
                # pycocotools allocates memory in proportion to the polygon's extent
                if not (-width <= x <= 2 * width and -height <= y <= 2 * height):
                    return (
                        f"'segmentation' polygon {k} has the point ({x}, {y}), far outside the "
                        f"{width:g}x{height:g} image of {image}"
                    )
        return None
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        return (
            "'segmentation' must be a list of polygons or an RLE {'counts': ..., 'size': [h, w]}, "
            f"got {_show(seg)}"
        )
    if seg["size"] != [height, width]:
        return (
            f"'segmentation' RLE size {_show(seg['size'])} is not the [height, width] "
            f"[{height:g}, {width:g}] of {image}"
        )
    counts = seg["counts"]
    runs = _rle_string_counts(counts) if isinstance(counts, str) else counts
    if not (isinstance(runs, list) and all(_is_int(c) and 0 <= c < 2**32 for c in runs)):
        return f"'segmentation' RLE counts are not valid run lengths: {_show(counts)}"
    if sum(runs) != width * height:
        return (
            f"'segmentation' RLE counts cover {sum(runs)} pixels, not the "
            f"{int(width * height)} of the {width:g}x{height:g} image of {image}"
        )
    return None


def _rle_string_counts(text: str) -> list[int] | None:
    """The run lengths of a compressed RLE string (pycocotools' ``rleFrString``), or None."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                return None
            char = ord(text[pos]) - 48
            if not 0 <= char < 64:
                return None
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            pos += 1
            shift += 5
            if not more and char & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _check_unique_ids(data: dict[str, Any], ann_file: str) -> None:
    """Duplicate ids make pycocotools keep one entry and hang the others' data on it."""
    effects = (
        ("images", "image", "one image would train with the other's boxes"),
        ("categories", "category", "one category's objects would get the other's label"),
        ("annotations", "annotation", "annotation ids must be unique, as in MMDetection v2"),
    )
    for section, what, effect in effects:
        entries = data.get(section, [])
        counts = Counter(entry["id"] for entry in entries)
        repeated = [i for i, n in counts.items() if n > 1]
        if not repeated:
            continue
        shown = ", ".join(str(i) for i in repeated[:_SHOWN])
        more = f" and {len(repeated) - _SHOWN} more" if len(repeated) > _SHOWN else ""
        at = [f"{section}[{i}]" for i, entry in enumerate(entries) if entry["id"] == repeated[0]]
        raise DatasetError(
            f"{ann_file}: duplicate {what} ids {shown}{more} "
            f"({' and '.join(at)} have id {repeated[0]}): {effect}"
        )


def _fill_defaults(data: dict[str, Any], issues: DataIssues | None) -> None:
    names = {img["id"]: img["file_name"] for img in data["images"]}
    for ann in data.get("annotations", []):
        where = str(names.get(ann["image_id"], f"image_id {ann['image_id']}"))
        if "iscrowd" not in ann:
            if issues is not None:
                issues.add(
                    "annotations without 'iscrowd' (taken as 0)",
                    where,
                    f"annotation id {ann['id']}",
                    action="fixed",
                )
            ann["iscrowd"] = 0
        if "area" not in ann:
            if issues is not None:
                issues.add(
                    "annotations without 'area' (taken as the box's w * h)",
                    where,
                    f"annotation id {ann['id']}",
                    action="fixed",
                )
            ann["area"] = ann["bbox"][2] * ann["bbox"][3]
