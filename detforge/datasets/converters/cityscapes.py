"""Cityscapes fine annotations → COCO json (needs the ``cityscapesscripts`` package).

Follows MMDetection v2's ``tools/dataset_converters/cityscapes.py``: for each split, every
``<img_dir>/<split>/<city>/*_leftImg8bit.png`` is paired with
``<gt_dir>/<split>/<city>/*_gtFine_instanceIds.png``; each instance id ``>= 24`` whose label has
instances and is not ignored in evaluation becomes one annotation with an RLE mask, its area and
box from pycocotools; ids below 1000 are crowd regions (``iscrowd=1``). ``file_name`` and
``segm_file`` are ``<city>/<name>``. Categories keep the Cityscapes label ids (24 ``person`` ...
33 ``bicycle``), as in v2; image and annotation ids start at 1 (v2: 0). Outputs are
``instancesonly_filtered_gtFine_{train,val,test}.json``. Missing or unreadable instance maps and
files not named ``*_leftImg8bit.png`` are reported and skipped instead of stopping the run.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from detforge.datasets.converters._coco import ConversionResult, finish, progress
from detforge.datasets.issues import DataIssues, DatasetError
from detforge.structures.masks import rle_encode
from detforge.utils.image import ImageLoadError, imread

__all__ = ["SPLIT_FILES", "cityscapes_available", "cityscapes_to_coco", "load_cityscapes_image"]

logger = logging.getLogger("detforge")

#: Output file of each split, as v2 names them.
SPLIT_FILES = {
    "train": "instancesonly_filtered_gtFine_train.json",
    "val": "instancesonly_filtered_gtFine_val.json",
    "test": "instancesonly_filtered_gtFine_test.json",
}

_IMG_SUFFIX = "leftImg8bit.png"
_MISSING = (
    "converting Cityscapes needs the package 'cityscapesscripts', which is not installed "
    "(pip install cityscapesscripts)"
)


def cityscapes_available() -> bool:
    """Whether ``cityscapesscripts`` can be imported."""
    try:
        importlib.import_module("cityscapesscripts.helpers.labels")
    except ImportError:
        return False
    return True


def _labels_module() -> Any:
    try:
        return importlib.import_module("cityscapesscripts.helpers.labels")
    except ImportError as exc:
        raise ImportError(_MISSING) from exc


def load_cityscapes_image(
    files: tuple[str, str, str],
) -> tuple[dict[str, Any] | None, list[tuple[str, str, str]]]:
    """One image's info and annotations from its instance-id map (runs in worker processes).

    Args:
        files: ``(image_file, instance_ids_file, label_ids_file)``.

    Returns:
        ``(info, problems)``: ``info`` has ``file_name, height, width, segm_file`` and
        ``anns`` (``iscrowd, category_id, bbox, area, segmentation`` with an RLE), or is ``None``
        when the image cannot be used; ``problems`` are ``(kind, where, detail)`` to report.
    """
    labels = _labels_module()
    img_file, inst_file, segm_file = files
    city = Path(img_file).parent.name
    try:
        inst = imread(inst_file, flag="unchanged")
    except ImageLoadError as exc:
        return None, [("images whose instance map cannot be read", inst_file, str(exc))]
    problems: list[tuple[str, str, str]] = []
    anns = []
    for inst_id in np.unique(inst[inst >= 24]):
        label_id = int(inst_id) // 1000 if inst_id >= 1000 else int(inst_id)
        label = labels.id2label.get(label_id)
        if label is None:
            problems.append(("instances of unknown label ids", Path(inst_file).name, str(label_id)))
            continue
        if not label.hasInstances or label.ignoreInEval:
            continue
        rle = rle_encode(inst == inst_id, str_counts=True)
        area = float(mask_utils.area(rle))
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        anns.append(
            dict(
                iscrowd=int(inst_id < 1000),
                category_id=int(label.id),
                bbox=bbox,
                area=area,
                segmentation=rle,
            )
        )
    info = dict(
        file_name=f"{city}/{Path(img_file).name}",
        height=int(inst.shape[0]),
        width=int(inst.shape[1]),
        segm_file=f"{city}/{Path(segm_file).name}",
        anns=anns,
    )
    return info, problems


def _collect_files(img_dir: Path, gt_dir: Path, issues: DataIssues) -> list[tuple[str, str, str]]:
    files = []
    for img in sorted(img_dir.glob("*/*.png")):
        if not img.name.endswith(_IMG_SUFFIX):
            issues.add(f"images not named *_{_IMG_SUFFIX}", img.name)
            continue
        stem = img.relative_to(img_dir).as_posix()[: -len(_IMG_SUFFIX)]
        inst = gt_dir / f"{stem}gtFine_instanceIds.png"
        segm = gt_dir / f"{stem}gtFine_labelIds.png"
        files.append((str(img), str(inst), str(segm)))
    return files


def cityscapes_to_coco(
    cityscapes_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    img_dir: str = "leftImg8bit",
    gt_dir: str = "gtFine",
    nproc: int = 1,
    splits: Sequence[str] = ("train", "val", "test"),
    strict: bool = False,
) -> list[ConversionResult]:
    """Convert the Cityscapes fine annotations of each split to a COCO json in ``out_dir``.

    Args:
        cityscapes_path: Folder holding ``img_dir`` and ``gt_dir``.
        out_dir: Output folder (default: ``cityscapes_path``).
        img_dir: Image folder under ``cityscapes_path``.
        gt_dir: Annotation folder under ``cityscapes_path``.
        nproc: Worker processes for reading the instance maps.
        splits: Which of ``train``, ``val``, ``test`` to convert; a split without an image
            folder is skipped (logged).
        strict: Raise on the first problem instead of skipping it.

    Raises:
        ImportError: ``cityscapesscripts`` is not installed (the message says how to get it).
        DatasetError: no split had any image.
    """
    labels = _labels_module()
    root = Path(cityscapes_path)
    if not root.is_dir():
        raise FileNotFoundError(f"Cityscapes folder not found: {root}")
    out = Path(out_dir) if out_dir is not None else root
    categories = [
        dict(id=int(lab.id), name=lab.name)
        for lab in labels.labels
        if lab.hasInstances and not lab.ignoreInEval
    ]
    results = []
    for split in splits:
        if split not in SPLIT_FILES:
            raise ValueError(f"unknown split {split!r}; expected one of {list(SPLIT_FILES)}")
        split_img = root / img_dir / split
        if not split_img.is_dir():
            logger.info("skipping Cityscapes %s: %s does not exist", split, split_img)
            continue
        issues = DataIssues(f"cityscapes({split})", strict=strict)
        files = _collect_files(split_img, root / gt_dir / split, issues)
        if not files:
            logger.warning("skipping Cityscapes %s: no images in %s", split, split_img)
            continue
        coco = _convert_files(files, categories, issues, nproc)
        results.append(finish(coco, issues, out / SPLIT_FILES[split]))
    if not results:
        raise DatasetError(f"{root}: no Cityscapes images found under {root / img_dir}")
    return results


def _convert_files(
    files: list[tuple[str, str, str]],
    categories: list[dict[str, Any]],
    issues: DataIssues,
    nproc: int,
) -> dict[str, Any]:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    if nproc > 1:
        with multiprocessing.get_context("spawn").Pool(nproc) as pool:
            loaded = list(
                progress(
                    pool.imap(load_cityscapes_image, files, chunksize=4), "cityscapes", len(files)
                )
            )
    else:
        loaded = [load_cityscapes_image(f) for f in progress(files, "cityscapes")]
    for info, problems in loaded:
        for kind, where, detail in problems:
            issues.add(kind, where, detail)
        if info is None:
            continue
        anns = info.pop("anns")
        info["id"] = len(images) + 1
        images.append(info)
        for ann in anns:
            annotations.append(dict(ann, id=len(annotations) + 1, image_id=info["id"]))
    return dict(images=images, annotations=annotations, categories=categories)
