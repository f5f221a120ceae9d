"""``XMLDataset``, ``VOCDataset`` and ``WIDERFaceDataset``: Pascal-VOC-style XML annotations."""

from __future__ import annotations

import logging
import math
import os.path as osp
import re
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from detforge.datasets.custom import CustomDataset, evaluate_map_or_recall, list_from_file
from detforge.datasets.issues import DatasetError, check_classes_known
from detforge.evaluation.class_names import VOC_CLASSES, WIDER_FACE_CLASSES
from detforge.registry import DATASETS

__all__ = ["VOCDataset", "WIDERFaceDataset", "XMLDataset"]

logger = logging.getLogger("detforge")


@DATASETS.register_module()
class XMLDataset(CustomDataset):
    """Images listed by id in ``ann_file``, one ``<ann_subdir>/<id>.xml`` each (v2 semantics).

    Box coordinates are read as ``int(float(text))`` and shifted by −1 (v2's convention for
    1-based VOC pixels); ``difficult`` objects, and objects smaller than ``min_size``, go to
    ``bboxes_ignore``. Objects of classes not in ``classes`` are skipped and counted by name in
    one warning; a name in ``classes`` that no XML uses, while some object names match no
    class, is an error listing the names found (a typo such as ``'Platelet'`` for
    ``'Platelets'`` would drop every object of that class). Boxes with zero or negative size
    after the shift, or with unreadable or non-finite coordinates, are dropped and reported. An
    XML whose ``<size>`` is zero or unreadable gets the size of its image file (reported).

    Args:
        min_size: Objects whose width or height is below this are ignored (training only).
        img_subdir: Folder of the images under ``img_prefix``.
        ann_subdir: Folder of the XML files under ``img_prefix``.
        img_suffix: Extension of the image files.
        **kwargs: The arguments of :class:`CustomDataset` (``ann_file``, ``pipeline``, ...).
    """

    def __init__(
        self,
        min_size: int | None = None,
        img_subdir: str = "JPEGImages",
        ann_subdir: str = "Annotations",
        img_suffix: str = ".jpg",
        **kwargs: Any,
    ) -> None:
        if not (self.CLASSES or kwargs.get("classes")):
            raise DatasetError(f"{type(self).__name__} needs classes=(...) (CLASSES is None)")
        self.img_subdir = img_subdir
        self.ann_subdir = ann_subdir
        self.img_suffix = img_suffix
        self.min_size = min_size
        super().__init__(**kwargs)

    @property
    def cat2label(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.CLASSES or ())}

    def _xml_path(self, img_id: str) -> str:
        return osp.join(self.img_prefix, self.ann_subdir, f"{img_id}.xml")

    def _image_filename(self, img_id: str, root: ET.Element) -> str:
        return osp.join(self.img_subdir, f"{img_id}{self.img_suffix}")

    def load_annotations(self, ann_file: str) -> list[dict[str, Any]]:
        infos = []
        self._objects: dict[str, list[ET.Element]] = {}
        for img_id in list_from_file(ann_file):
            xml_path = self._xml_path(img_id)
            try:
                root = ET.parse(xml_path).getroot()
            except (OSError, ET.ParseError) as exc:
                self.issues.add("images whose XML cannot be read", xml_path, str(exc))
                continue
            filename = self._image_filename(img_id, root)
            size = self._declared_size(root, osp.basename(xml_path))
            if size is None:
                try:
                    with Image.open(osp.join(self.img_prefix, filename)) as img:
                        size = img.size
                except OSError as exc:
                    self.issues.add("images that cannot be opened", filename, str(exc))
                    continue
            self._objects[img_id] = root.findall("object")
            infos.append(dict(id=img_id, filename=filename, width=size[0], height=size[1]))
        self._check_object_names(ann_file)
        self._anns = {info["id"]: self._parse_objects(info) for info in infos}
        return infos

    def _declared_size(self, root: ET.Element, where: str) -> tuple[int, int] | None:
        """``(width, height)`` of ``<size>``; None when absent, zero or unreadable (reported)."""
        size = root.find("size")
        if size is None or not (size.findtext("width") and size.findtext("height")):
            return None
        text = (size.findtext("width") or "", size.findtext("height") or "")
        try:
            width, height = (int(float(t)) for t in text)
        except (ValueError, OverflowError):
            width = height = 0
        if width > 0 and height > 0:
            return width, height
        self.issues.add(
            "XMLs with a zero or unreadable <size> (size read from the image)",
            where,
            f"<width>{text[0]}</width> <height>{text[1]}</height>",
            action="fixed",
        )
        return None

    def _check_object_names(self, ann_file: str) -> None:
        """Raise on a class no XML uses (when names go unmatched); count skipped objects."""
        found = Counter(
            (obj.findtext("name") or "").strip() for objs in self._objects.values() for obj in objs
        )
        classes = self.CLASSES or ()
        skipped = {name: n for name, n in found.items() if name not in classes}
        if not skipped:
            return
        check_classes_known(ann_file, classes, sorted(found), "object <name> in its XML files")
        logger.warning(
            "%s: skipped %d objects whose <name> is not in classes: %s",
            self.issues.source,
            sum(skipped.values()),
            ", ".join(f"{name!r} ({n})" for name, n in sorted(skipped.items())),
        )

    def _parse_objects(self, info: dict[str, Any]) -> dict[str, Any]:
        where = osp.basename(self._xml_path(info["id"]))
        boxes: list[list[int]] = []
        labels: list[int] = []
        ignore: list[list[int]] = []
        ignore_labels: list[int] = []
        cat2label = self.cat2label
        for obj in self._objects[info["id"]]:
            name = (obj.findtext("name") or "").strip()
            if name not in cat2label:
                continue
            difficult = int(obj.findtext("difficult") or 0)
            bnd = obj.find("bndbox")
            if bnd is None:
                self.issues.add("objects without a bndbox", where, name)
                continue
            texts = [bnd.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
            try:
                coords = [float(t or "") for t in texts]  # a missing one is unreadable too
            except ValueError:
                self.issues.add("objects with unreadable coordinates", where, f"{name} {texts}")
                continue
            if not all(math.isfinite(c) for c in coords):
                self.issues.add("boxes with non-finite coordinates", where, f"{name} {texts}")
                continue
            box = [int(c) for c in coords]
            if box[2] <= box[0] or box[3] <= box[1]:
                self.issues.add("boxes with zero or negative size", where, f"{name} {box}")
                continue
            small = bool(self.min_size) and (
                box[2] - box[0] < self.min_size or box[3] - box[1] < self.min_size  # type: ignore[operator]
            )
            if small and self.test_mode:
                raise DatasetError("min_size is only for training (test_mode=True was given)")
            if difficult or small:
                ignore.append(box)
                ignore_labels.append(cat2label[name])
            else:
                boxes.append(box)
                labels.append(cat2label[name])
        return dict(
            bboxes=(np.array(boxes, dtype=np.float32).reshape(-1, 4) - 1),
            labels=np.array(labels, dtype=np.int64),
            bboxes_ignore=(np.array(ignore, dtype=np.float32).reshape(-1, 4) - 1),
            labels_ignore=np.array(ignore_labels, dtype=np.int64),
        )

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        return dict(self._anns[self.data_infos[idx]["id"]])

    def _filter_imgs(self, min_size: int = 32) -> list[int]:
        """Drop small images and, with ``filter_empty_gt``, images with no object of ``classes``."""
        valid = []
        cat2label = self.cat2label
        for i, info in enumerate(self.data_infos):
            if min(info["width"], info["height"]) < min_size:
                continue
            if self.filter_empty_gt:
                names = {(o.findtext("name") or "").strip() for o in self._objects[info["id"]]}
                if not names & set(cat2label):
                    continue
            valid.append(i)
        return valid


@DATASETS.register_module()
class VOCDataset(XMLDataset):
    """Pascal VOC 2007/2012; the year comes from ``VOC2007``/``VOC2012`` in ``img_prefix``.

    Evaluation uses v2's legacy ``+1`` box size, and 11-point AP for VOC2007.
    """

    CLASSES: tuple[str, ...] | None = VOC_CLASSES

    def __init__(self, **kwargs: Any) -> None:
        prefix = str(kwargs.get("img_prefix", ""))
        if kwargs.get("data_root") and not osp.isabs(prefix):
            prefix = osp.join(str(kwargs["data_root"]), prefix)
        years = re.findall(r"VOC(2007|2012)", prefix)
        if not years:
            raise DatasetError(
                f"VOCDataset: cannot infer the VOC year from img_prefix '{prefix}' (it must "
                "contain VOC2007 or VOC2012); for another Pascal-VOC-style dataset use "
                "type='XMLDataset' with classes=(...)"
            )
        self.year = int(years[-1])
        super().__init__(**kwargs)

    def evaluate_annotations(
        self,
        results: Sequence[Any],
        annotations: Sequence[Mapping[str, Any]],
        metric: str | Sequence[str] = "mAP",
        logger: logging.Logger | str | None = None,
        proposal_nums: Sequence[int] = (100, 300, 1000),
        iou_thr: float | Sequence[float] = 0.5,
        scale_ranges: Sequence[tuple[float, float]] | None = None,
    ) -> OrderedDict[str, float]:
        """``AP50``... and ``mAP`` (11-point for 2007), or ``recall@N@iou``/``AR@N``."""
        results_dict = evaluate_map_or_recall(
            results,
            annotations,
            metric=metric,
            classes="voc07" if self.year == 2007 else self.CLASSES,
            logger=logger,
            proposal_nums=proposal_nums,
            iou_thr=iou_thr,
            scale_ranges=None,
            use_legacy_coordinate=True,
        )
        if "mAP" in results_dict:
            results_dict.move_to_end("mAP", last=False)
        return results_dict


@DATASETS.register_module()
class WIDERFaceDataset(XMLDataset):
    """WIDER Face converted to VOC-style XML: images live in the folder each XML names."""

    CLASSES: tuple[str, ...] | None = WIDER_FACE_CLASSES

    def _image_filename(self, img_id: str, root: ET.Element) -> str:
        folder = root.findtext("folder")
        if not folder:
            raise DatasetError(f"{self._xml_path(img_id)}: no <folder> element")
        return osp.join(folder, f"{img_id}{self.img_suffix}")
