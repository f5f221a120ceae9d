"""Pascal-VOC-style XML annotations → COCO json or MMDetection v2's middle-format pickle.

Boxes follow MMDetection v2's ``tools/dataset_converters/pascal_voc.py``: XML coordinates are read
as integers and shifted by −1 (VOC pixels are 1-based), so the middle format holds
``x1 - 1, y1 - 1, x2 - 1, y2 - 1`` and the COCO ``bbox`` is ``[x1 - 1, y1 - 1, x2 - x1, y2 - y1]``
(integers; ``area = w * h``; ``segmentation`` is the box as a 4-corner polygon). Loading that json
with ``CocoDataset`` (``[x, y, x + w, y + h]``) gives exactly the boxes ``XMLDataset`` reads from
the XML files. ``difficult`` objects become ``iscrowd = 1`` (``bboxes_ignore`` in the middle
format), as in v2.

Unlike v2, bad objects do not stop the conversion: boxes with zero or negative size, objects of
unknown classes and unreadable coordinates are dropped and reported in one summary line.
Ids start at 1 (see :mod:`detforge.datasets.converters._coco`).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from detforge.datasets.converters._coco import (
    CocoBuilder,
    ConversionResult,
    finish,
    image_size,
    progress,
    read_class_names,
)
from detforge.datasets.issues import DataIssues, DatasetError
from detforge.evaluation.class_names import VOC_CLASSES
from detforge.utils.image import ImageLoadError

__all__ = ["middle_to_coco", "parse_voc_xml", "voc_devkit_to_coco", "xml_to_coco"]

logger = logging.getLogger("detforge")

OutFormat = Literal["coco", "pkl"]


def parse_voc_xml(
    xml_path: str | os.PathLike[str],
    filename: str,
    classes: Sequence[str],
    issues: DataIssues,
    *,
    image_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any] | None:
    """One XML file as a v2 middle-format entry (boxes shifted by −1, ``difficult`` ignored).

    Args:
        xml_path: The annotation file.
        filename: The image path to record (relative to the dataset root).
        classes: Class names; label ``i`` is ``classes[i]``.
        issues: Receives what is dropped.
        image_path: Where to read the image size from when the XML has no ``<size>``.

    Returns:
        ``{'filename', 'width', 'height', 'ann': {'bboxes': ndarray[N, 4] float32,
        'labels': ndarray[N] int64, 'bboxes_ignore': ndarray[K, 4], 'labels_ignore': ndarray[K]}}``,
        or ``None`` if the file cannot be used (reported).
    """
    where = Path(xml_path).name
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as exc:
        issues.add("images whose XML cannot be read", str(xml_path), str(exc))
        return None
    size = _xml_size(root)
    if size is None:
        if image_path is None:
            issues.add("images without a size", where)
            return None
        try:
            size = image_size(image_path)
        except ImageLoadError as exc:
            issues.add("images without a size that cannot be opened", where, str(exc))
            return None
    label_of = {name: i for i, name in enumerate(classes)}
    boxes: dict[bool, list[list[int]]] = {False: [], True: []}
    labels: dict[bool, list[int]] = {False: [], True: []}
    for obj in root.findall("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in label_of:
            issues.add("objects of classes not in classes", where, repr(name))
            continue
        bnd = obj.find("bndbox")
        coords = [_to_int(bnd.findtext(k) if bnd is not None else None) for k in _CORNERS]
        if None in coords:
            issues.add("objects with a missing or unreadable bndbox", where, name)
            continue
        x1, y1, x2, y2 = cast("list[int]", coords)
        if x2 <= x1 or y2 <= y1:
            issues.add("boxes with zero or negative size", where, f"{name} {[x1, y1, x2, y2]}")
            continue
        ignored = int(_to_int(obj.findtext("difficult")) or 0) != 0
        boxes[ignored].append([x1, y1, x2, y2])
        labels[ignored].append(label_of[name])
    return dict(
        filename=filename,
        width=size[0],
        height=size[1],
        ann=dict(
            bboxes=np.array(boxes[False], dtype=np.float32).reshape(-1, 4) - 1,
            labels=np.array(labels[False], dtype=np.int64),
            bboxes_ignore=np.array(boxes[True], dtype=np.float32).reshape(-1, 4) - 1,
            labels_ignore=np.array(labels[True], dtype=np.int64),
        ),
    )


_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _to_int(text: str | None) -> int | None:
    """``int(float(text))`` like v2's XMLDataset, or ``None`` for missing/non-numeric text."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if np.isfinite(value) else None


def _xml_size(root: ET.Element) -> tuple[int, int] | None:
    size = root.find("size")
    if size is None:
        return None
    width, height = _to_int(size.findtext("width")), _to_int(size.findtext("height"))
    if not width or not height or width <= 0 or height <= 0:
        return None
    return width, height


def middle_to_coco(
    records: Sequence[dict[str, Any]], classes: Sequence[str], source: str = "middle format"
) -> dict[str, Any]:
    """v2 middle-format entries (boxes already shifted by −1) → COCO dict, as v2's VOC converter.

    Per image, the kept boxes come first (``iscrowd=0``), then the ignored ones (``iscrowd=1``).
    ``bbox = [x1, y1, x2 - x1, y2 - y1]`` as integers, ``area = w * h``, ``segmentation`` is the
    box outline, ``ignore = 0``; the dict has v2's ``type='instance'``.

    Example:
        >>> rec = dict(filename='a.jpg', width=10, height=10, ann=dict(
        ...     bboxes=np.array([[1., 2., 5., 8.]]), labels=np.array([0]),
        ...     bboxes_ignore=np.zeros((0, 4)), labels_ignore=np.zeros(0, int)))
        >>> ann = middle_to_coco([rec], ['cat'])['annotations'][0]
        >>> ann['bbox'], ann['area'], ann['segmentation']
        ([1, 2, 4, 6], 24, [[1, 2, 1, 8, 5, 8, 5, 2]])
    """
    builder = CocoBuilder(classes)
    for rec in records:
        image_id = builder.add_image(str(rec["filename"]), int(rec["width"]), int(rec["height"]))
        ann = rec["ann"]
        for crowd, (bboxes, labels) in enumerate(
            [(ann["bboxes"], ann["labels"]), (ann["bboxes_ignore"], ann["labels_ignore"])]
        ):
            for box, label in zip(np.asarray(bboxes).reshape(-1, 4), labels, strict=True):
                x1, y1, x2, y2 = (int(v) for v in box)
                if x2 <= x1 or y2 <= y1:
                    raise DatasetError(f"{source}: {rec['filename']}: box {box.tolist()} is empty")
                builder.add_annotation(
                    image_id,
                    int(label) + 1,
                    [x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    iscrowd=crowd,
                    segmentation=[[x1, y1, x1, y2, x2, y2, x2, y1]],
                    ignore=0,
                )
    return builder.to_dict(type="instance")


def xml_to_coco(
    root: str | os.PathLike[str],
    ann_file: str | os.PathLike[str],
    classes: Sequence[str] | str | os.PathLike[str],
    out_file: str | os.PathLike[str] | None = None,
    *,
    ann_subdir: str = "Annotations",
    img_subdir: str = "JPEGImages",
    img_suffix: str = ".jpg",
    out_format: OutFormat = "coco",
    strict: bool = False,
) -> ConversionResult:
    """Convert any Pascal-VOC-style folder (e.g. BCCD) with the arguments of ``XMLDataset``.

    Image ``<id>`` has its annotation at ``root/ann_subdir/<id>.xml`` and its image at
    ``root/img_subdir/<id><img_suffix>``; the output's file names are ``img_subdir/<id><suffix>``,
    so a config uses ``img_prefix=root``.

    Args:
        root: The dataset folder (``XMLDataset``'s ``img_prefix``).
        ann_file: Text file of image ids, one per line; a relative path is looked up under
            ``root`` first, then from the current folder.
        classes: Class names in label order, or a file with one name per line.
        out_file: Where to write (json for ``'coco'``, pickle for ``'pkl'``); ``None`` to only
            return the data.
        ann_subdir: Folder of the XML files under ``root``.
        img_subdir: Folder of the images under ``root``.
        img_suffix: Image file extension.
        out_format: ``'coco'`` (json dict) or ``'pkl'`` (v2 middle-format list).
        strict: Raise :class:`DatasetError` on the first problem instead of dropping it.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / 'Annotations').mkdir()
        >>> _ = (d / 'ids.txt').write_text('im1\\n')
        >>> _ = (d / 'Annotations' / 'im1.xml').write_text(
        ...     '<annotation><size><width>50</width><height>40</height></size>'
        ...     '<object><name>cell</name><bndbox><xmin>11</xmin><ymin>21</ymin>'
        ...     '<xmax>20</xmax><ymax>30</ymax></bndbox></object></annotation>')
        >>> res = xml_to_coco(d, 'ids.txt', ['cell'])
        >>> res.data['annotations'][0]['bbox'], res.data['images'][0]['file_name']
        ([10, 20, 9, 9], 'JPEGImages/im1.jpg')
    """
    root = Path(root)
    id_file = _find_id_file(root, Path(ann_file))
    names = read_class_names(classes)
    issues = DataIssues(f"xml({id_file})", strict=strict)
    records = _parse_split(root, id_file, names, issues, ann_subdir, img_subdir, img_suffix)
    return _finish_records(records, names, issues, out_file, out_format)


def _find_id_file(root: Path, ann_file: Path) -> Path:
    candidates = [ann_file] if ann_file.is_absolute() else [root / ann_file, ann_file]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "image id list not found: " + " or ".join(str(p) for p in dict.fromkeys(candidates))
    )


def _parse_split(
    root: Path,
    id_file: Path,
    classes: Sequence[str],
    issues: DataIssues,
    ann_subdir: str,
    img_subdir: str,
    img_suffix: str,
) -> list[dict[str, Any]]:
    ids = [line.strip() for line in id_file.read_text(encoding="utf-8").splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise DatasetError(f"{id_file}: no image ids")
    records = []
    for img_id in progress(ids, desc=id_file.name):
        filename = f"{img_subdir}/{img_id}{img_suffix}"
        rec = parse_voc_xml(
            root / ann_subdir / f"{img_id}.xml",
            filename,
            classes,
            issues,
            image_path=root / filename,
        )
        if rec is not None:
            records.append(rec)
    return records


def _finish_records(
    records: list[dict[str, Any]],
    classes: Sequence[str],
    issues: DataIssues,
    out_file: str | os.PathLike[str] | None,
    out_format: OutFormat,
) -> ConversionResult:
    if out_format not in ("coco", "pkl"):
        raise ValueError(f"out_format must be 'coco' or 'pkl', got {out_format!r}")
    data: Any = middle_to_coco(records, classes, issues.source) if out_format == "coco" else records
    return finish(data, issues, out_file, out_format=out_format)


_YEAR_PREFIX = {"2007": "voc07", "2012": "voc12"}


def voc_devkit_to_coco(
    devkit_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    out_format: OutFormat = "pkl",
    strict: bool = False,
) -> list[ConversionResult]:
    """Convert a VOCdevkit like v2's ``tools/dataset_converters/pascal_voc.py``.

    For each of ``VOC2007``/``VOC2012`` present, writes ``voc07_{train,val,trainval,test}`` (or
    ``voc12_...``) and, when both are present, ``voc0712_{train,val,trainval}``; the extension is
    ``.json`` for ``out_format='coco'`` and ``.pkl`` otherwise. A split whose
    ``ImageSets/Main/<split>.txt`` is missing is skipped (logged). File names are relative to
    ``devkit_path`` (``VOC2007/JPEGImages/000001.jpg``), classes are the 20 VOC classes.

    Args:
        devkit_path: Folder holding ``VOC2007`` and/or ``VOC2012``.
        out_dir: Output folder (default: ``devkit_path``).
        out_format: ``'pkl'`` (v2's default) or ``'coco'``.
        strict: Raise on the first bad object instead of dropping it.

    Returns:
        One result per file written, in v2's order.
    """
    devkit = Path(devkit_path)
    if not devkit.is_dir():
        raise FileNotFoundError(f"devkit path not found: {devkit}")
    years = [y for y in ("2007", "2012") if (devkit / f"VOC{y}").is_dir()]
    if not years:
        raise DatasetError(f"devkit path {devkit} contains neither a VOC2007 nor a VOC2012 folder")
    out = Path(out_dir) if out_dir is not None else devkit
    ext = ".json" if out_format == "coco" else ".pkl"
    cache: dict[tuple[str, str], tuple[list[dict[str, Any]], DataIssues] | None] = {}

    def parsed(year: str, split: str) -> tuple[list[dict[str, Any]], DataIssues] | None:
        if (year, split) not in cache:
            id_file = devkit / f"VOC{year}" / "ImageSets" / "Main" / f"{split}.txt"
            if not id_file.is_file():
                logger.info("skipping VOC%s %s: %s does not exist", year, split, id_file)
                cache[year, split] = None
            else:
                issues = DataIssues(f"voc(VOC{year}/{split})", strict=strict)
                records = _parse_split(
                    devkit,
                    id_file,
                    VOC_CLASSES,
                    issues,
                    f"VOC{year}/Annotations",
                    f"VOC{year}/JPEGImages",
                    ".jpg",
                )
                cache[year, split] = (records, issues)
        return cache[year, split]

    jobs: list[tuple[str, list[str], str]] = []
    for year in years:
        splits = ["train", "val", "trainval", "test"]
        jobs += [(f"{_YEAR_PREFIX[year]}_{s}", [year], s) for s in splits]
    if len(years) == 2:
        jobs += [(f"voc0712_{s}", years, s) for s in ("train", "val", "trainval")]
    results = []
    for name, job_years, split in jobs:
        parts = [p for p in (parsed(y, split) for y in job_years) if p is not None]
        if len(parts) < len(job_years):
            continue
        issues = DataIssues(f"voc({name})", strict=strict)
        records: list[dict[str, Any]] = []
        for part_records, part_issues in parts:
            records += part_records
            for kind, places in part_issues.kinds.items():
                for place in places:
                    issues.add(kind, place)
        results.append(
            _finish_records(records, VOC_CLASSES, issues, out / f"{name}{ext}", out_format)
        )
    return results
