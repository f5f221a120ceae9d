"""Fuzz: 500 seeded mutations of a small COCO json through ``CocoDataset``.

Each mutated file is loaded as a training set (and its first pipeline steps run on every image)
and as a test set evaluated on its own ground truth. Whatever breaks must break as a project
error (``DatasetError``/``ImageLoadError``) whose message names the json file, and an error
caused by one broken entry must name that entry (``annotations[3]``).
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from detforge.datasets import CocoDataset, DatasetError
from detforge.utils.image import ImageLoadError

NUM_CASES = 500
CLASSES = ("cat", "dog", "bird")
IMAGES = {"a.png": (64, 48), "b.png": (48, 64), "c.png": (40, 40)}  # name: (width, height)
TRAIN_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", img_scale=(80, 60), keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=0.5),
]
SECTIONS = ("images", "annotations", "categories")
KEYS = {
    "images": ("id", "file_name", "width", "height"),
    "annotations": (
        "id",
        "image_id",
        "category_id",
        "bbox",
        "area",
        "iscrowd",
        "segmentation",
        "ignore",
    ),
    "categories": ("id", "name", "supercategory"),
}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD_VALUES: list[Any] = [
    None,
    "x",
    "big",
    "",
    -1,
    0,
    0.5,
    5,
    10**12,
    True,
    [],
    {},
    {"a": 1},
    [1, 2, 3],
    [1, 2, 3, 4],
    ["a", "b", "c", "d"],
    [None, None, None, None],
    nested(60),
    math.nan,
    math.inf,
    -math.inf,
    [[1, 2, 3]],
    [[1, 2, 3, 4, 5, 6, 7, 8]],
    {"counts": "zz", "size": [1, 1]},
    [1, "a"],
]
# errors about the file as a whole, which a single changed entry may legitimately cause
_GLOBAL = re.compile(r"duplicate|match no category")
BAD_SECTIONS: list[Any] = [None, {}, [], "x", 5, [1, "x", None], [[]], nested(60)]


def base_coco() -> dict[str, Any]:
    """Three images, three categories; polygons, an uncompressed and a compressed RLE crowd."""
    images = [
        dict(id=i + 1, file_name=name, width=w, height=h)
        for i, (name, (w, h)) in enumerate(IMAGES.items())
    ]
    cats = [dict(id=i + 1, name=n, supercategory="animal") for i, n in enumerate(CLASSES)]

    def poly(x: float, y: float, w: float, h: float) -> list[list[float]]:
        return [[x, y, x + w, y, x + w, y + h, x, y + h]]

    mask = np.zeros((40, 40), dtype=np.uint8, order="F")
    mask[10:20, 5:25] = 1
    compressed = mask_utils.encode(mask)
    compressed["counts"] = compressed["counts"].decode("ascii")
    boxes = [
        (1, 1, [4, 4, 20, 16], poly(4, 4, 20, 16), 0),
        (1, 2, [30, 10, 20, 30], poly(30, 10, 20, 30), 0),
        (2, 3, [5, 5, 30, 30], poly(5, 5, 30, 30), 0),
        (2, 1, [0, 0, 10, 10], {"counts": [10, 50, 3012], "size": [64, 48]}, 1),
        (3, 2, [2, 2, 30, 30], poly(2, 2, 30, 30), 0),
        (3, 1, [5, 10, 20, 10], compressed, 1),
        (3, 3, [20, 20, 15, 15], poly(20, 20, 15, 15), 0),
    ]
    anns = [
        dict(
            id=i + 1,
            image_id=img,
            category_id=cat,
            bbox=box,
            area=box[2] * box[3],
            iscrowd=crowd,
            segmentation=seg,
        )
        for i, (img, cat, box, seg, crowd) in enumerate(boxes)
    ]
    return dict(images=images, annotations=anns, categories=cats)


def mutate(data: dict[str, Any], rng: random.Random) -> tuple[Any, str, str | None]:
    """Apply one random mutation; returns (new data, description, entry it broke or None)."""
    op = rng.choices(
        ["set", "del", "elem", "dup", "section", "top", "text"], [40, 20, 15, 8, 8, 4, 5]
    )[0]
    section = rng.choice(SECTIONS)
    entries = data.get(section) if isinstance(data, dict) else None
    if op in ("set", "del", "elem", "dup") and not (
        isinstance(entries, list) and entries and isinstance(entries[0], dict)
    ):
        op = "section"
    if op == "section":
        bad = copy.deepcopy(rng.choice([*BAD_SECTIONS, "<delete>"]))
        if bad == "<delete>":
            data.pop(section, None)
        else:
            data[section] = bad
        return data, f"{section} = {str(bad)[:40]}", None
    if op == "top":
        new = rng.choice([[data], None, "coco", 5, nested(60)])
        return new, f"top-level {str(new)[:40]}", None
    if op == "text":
        kind = rng.choice(["truncated", "binary", "deep"])
        text = json.dumps(data)
        if kind == "truncated":
            return text[: rng.randrange(1, len(text))], "truncated json", None
        if kind == "binary":
            return b"\xff\xfe\x00garbage", "not utf-8", None
        return "[" * 100_000 + "]" * 100_000, "nesting 100,000 deep", None
    assert isinstance(entries, list)
    index = rng.randrange(len(entries))
    entry = entries[index]
    if not isinstance(entry, dict):
        return data, "no-op", None
    where = f"{section}[{index}]"
    if op == "dup":
        other = entries[rng.randrange(len(entries))]
        if other is not entry and isinstance(other, dict) and "id" in other:
            entry["id"] = other.get("id")
        else:
            entries.append(copy.deepcopy(entry))
        return data, f"duplicate id in {section}", None
    key = rng.choice(KEYS[section])
    if op == "del":
        entry.pop(key, None)
        return data, f"del {where}.{key}", where
    if op == "elem" and isinstance(entry.get(key), list) and entry[key]:
        target = entry[key]
        if isinstance(target[0], list) and target[0]:
            target = target[0]
        target[rng.randrange(len(target))] = copy.deepcopy(rng.choice(BAD_VALUES))
        return data, f"elem {where}.{key}", where
    entry[key] = copy.deepcopy(rng.choice(BAD_VALUES))
    return data, f"set {where}.{key} = {str(entry[key])[:40]}", where


def make_case(seed: int) -> tuple[Any, str, str | None]:
    rng = random.Random(seed)
    data: Any = base_coco()
    descs, wheres = [], []
    for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):
        if not isinstance(data, dict):
            break
        data, desc, where = mutate(data, rng)
        descs.append(desc)
        wheres.append(where)
    return data, "; ".join(descs), wheres[0] if len(wheres) == 1 else None


def write_case(path: Path, data: Any) -> None:
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str) and data.startswith(("{", "[")):
        path.write_text(data)
    else:
        path.write_text(json.dumps(data, allow_nan=True))


def gt_as_results(ds: CocoDataset) -> list[list[np.ndarray]]:
    results = []
    for i in range(len(ds)):
        ann = ds.get_ann_info(i)
        per_class = [np.zeros((0, 5), np.float32) for _ in CLASSES]
        for box, label in zip(ann["bboxes"], ann["labels"], strict=True):
            per_class[label] = np.vstack([per_class[label], [*box, 1.0]]).astype(np.float32)
        results.append(per_class)
    return results


def _names_entry(message: str, where: str, data: Any) -> bool:
    """An error from one broken entry names it (a pipeline error: the annotation's image)."""
    if where in message or _GLOBAL.search(message):
        return True
    section, index = where[:-1].split("[")
    if section != "annotations":
        return False
    image_id = data["annotations"][int(index)].get("image_id")
    names = [img.get("file_name") for img in data["images"] if img.get("id") == image_id]
    return any(isinstance(n, str) and f": {n}:" in message for n in names)


def run_case(ann_file: Path, img_prefix: Path) -> None:
    common = dict(ann_file=str(ann_file), img_prefix=str(img_prefix), classes=CLASSES)
    train = CocoDataset(pipeline=TRAIN_PIPELINE, **common)
    for i in range(len(train)):
        train[i]
    test = CocoDataset(pipeline=[], test_mode=True, **common)
    test.evaluate(gt_as_results(test), metric="bbox")


def fuzz(tmp_path: Path, num_cases: int = NUM_CASES) -> tuple[Counter[str], list[str]]:
    """Run the cases; returns outcome counts and the descriptions of the failures."""
    img_prefix = tmp_path / "images"
    img_prefix.mkdir()
    for name, (w, h) in IMAGES.items():
        cv2.imwrite(str(img_prefix / name), np.full((h, w, 3), 127, np.uint8))
    outcomes: Counter[str] = Counter()
    failures = []
    for seed in range(num_cases):
        data, desc, where = make_case(seed)
        ann_file = tmp_path / f"case{seed:03d}.json"
        write_case(ann_file, data)
        np.random.seed(seed)
        try:
            run_case(ann_file, img_prefix)
            outcomes["loaded"] += 1
        except (DatasetError, ImageLoadError) as exc:
            message = str(exc)
            if ann_file.name not in message:
                failures.append(f"seed {seed} ({desc}): message lacks the file: {message}")
            elif where is not None and not _names_entry(message, where, data):
                failures.append(f"seed {seed} ({desc}): message lacks {where}: {message}")
            outcomes["project error"] += 1
        except Exception as exc:  # counting what escapes is the point
            failures.append(f"seed {seed} ({desc}): {type(exc).__name__}: {exc}"[:300])
            outcomes["other error"] += 1
    return outcomes, failures


@pytest.mark.filterwarnings("ignore")
def test_mutated_coco_files_fail_only_with_project_errors_naming_the_file(
    tmp_path: Path,
) -> None:
    outcomes, failures = fuzz(tmp_path)
    assert not failures, f"{len(failures)} of {NUM_CASES} cases:\n" + "\n".join(failures[:20])
    # the mutations must exercise both paths, or the test proves nothing
    assert outcomes["loaded"] > 50 and outcomes["project error"] > 100, outcomes
