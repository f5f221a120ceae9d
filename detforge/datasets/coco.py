"""``CocoDataset``: COCO-format json through pycocotools, with v2's filters and metrics."""

from __future__ import annotations

import logging
import math
import os.path as osp
import tempfile
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from detforge.datasets.coco_json import read_coco
from detforge.datasets.custom import CustomDataset
from detforge.datasets.issues import DataIssues, DatasetError, check_classes_known
from detforge.evaluation import COCO_ALLOWED_METRICS, evaluate_coco, fast_eval_recall, results2json
from detforge.evaluation.class_names import COCO_CLASSES
from detforge.registry import DATASETS

__all__ = ["CocoDataset", "load_coco"]

logger = logging.getLogger("detforge")


def load_coco(ann_file: str, issues: DataIssues | None = None) -> COCO:
    """Load a COCO json quietly, checked entry by entry (see :mod:`detforge.datasets.coco_json`).

    Raises:
        DatasetError: naming the file and its first bad entry.
    """
    return read_coco(ann_file, issues)


@DATASETS.register_module()
class CocoDataset(CustomDataset):
    """COCO instances json (v2 ``CocoDataset``); same arguments as :class:`CustomDataset`.

    Labels follow the json's category order among the selected ``classes`` (as in v2). A name in
    ``classes`` that matches no category is an error listing the json's names. The json is
    checked entry by entry when read (:mod:`detforge.datasets.coco_json`): a broken entry or a
    duplicate id is an error naming the file and the entry. Annotations that are ``ignore`` are
    skipped; those with non-finite coordinates, ``w``/``h`` below 1 pixel, ``area <= 0`` or no
    overlap with the image are dropped and reported by that reason; ``iscrowd`` boxes go to
    ``bboxes_ignore``.
    """

    CLASSES: tuple[str, ...] | None = COCO_CLASSES
    ALLOWED_METRICS: tuple[str, ...] = COCO_ALLOWED_METRICS

    def load_annotations(self, ann_file: str) -> list[dict[str, Any]]:
        self.coco = load_coco(ann_file, self.issues)
        names = [c["name"] for c in self.coco.dataset.get("categories", [])]
        classes = self.CLASSES or ()
        check_classes_known(ann_file, classes, names, "category in the json")
        repeated = sorted(n for n, k in Counter(names).items() if k > 1 and n in classes)
        if repeated:
            raise DatasetError(
                f"{ann_file}: categories {repeated} are named more than once in the json, so "
                "their objects cannot be given one label"
            )
        self.cat_ids = self.coco.getCatIds(catNms=list(classes))
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        json_order = [self.coco.cats[c]["name"] for c in self.cat_ids]
        if list(json_order) != list(classes):
            logger.warning(
                "%s: labels follow the json's category order %s, not the order of classes=%s "
                "(as in MMDetection v2)",
                ann_file,
                json_order,
                list(classes),
            )
        known_images = set(self.coco.imgs)
        for ann in self.coco.dataset.get("annotations", []):
            if ann.get("image_id") not in known_images:
                self.issues.add(
                    "annotations for missing images",
                    f"image_id {ann.get('image_id')}",
                    f"annotation id {ann.get('id')}",
                )
            elif ann.get("category_id") not in self.coco.cats:
                self.issues.add(
                    "annotations with an unknown category",
                    self.coco.imgs[ann["image_id"]].get("file_name", "?"),
                    f"category_id {ann.get('category_id')}",
                )
        self.img_ids = self.coco.getImgIds()
        infos = []
        for img_id in self.img_ids:
            info = dict(self.coco.loadImgs([img_id])[0])
            info["filename"] = info["file_name"]
            infos.append(info)
        # parsed once, so that every dropped annotation is counted in the summary line
        self._ann_by_id = {info["id"]: self._parse_ann_info(info) for info in infos}
        return infos

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        return dict(self._ann_by_id[self.data_infos[idx]["id"]])

    def _parse_ann_info(self, img_info: dict[str, Any]) -> dict[str, Any]:
        where = str(img_info.get("file_name", img_info.get("id")))
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_info["id"]]))
        bboxes, labels, ignore, masks = [], [], [], []
        width, height = img_info["width"], img_info["height"]
        for ann in anns:
            if ann.get("ignore", False) or ann["category_id"] not in self.cat2label:
                continue
            x1, y1, w, h = ann["bbox"]
            reason = _bad_box_reason(x1, y1, w, h, ann["area"], width, height)
            if reason is not None:
                self.issues.add(reason, where, f"bbox {ann['bbox']} (annotation id {ann['id']})")
                continue
            box = [x1, y1, x1 + w, y1 + h]
            if ann.get("iscrowd", False):
                ignore.append(box)
            else:
                bboxes.append(box)
                labels.append(self.cat2label[ann["category_id"]])
                masks.append(ann.get("segmentation", None))
        return dict(
            bboxes=np.array(bboxes, dtype=np.float32).reshape(-1, 4),
            labels=np.array(labels, dtype=np.int64),
            bboxes_ignore=np.array(ignore, dtype=np.float32).reshape(-1, 4),
            masks=masks,
            seg_map=img_info["filename"].rsplit(".", 1)[0] + self.seg_suffix,
        )

    def _filter_imgs(self, min_size: int = 32) -> list[int]:
        """Drop small images and, with ``filter_empty_gt``, images without selected objects."""
        with_ann = {ann["image_id"] for ann in self.coco.anns.values()}
        in_cat: set[int] = set()
        for cat_id in self.cat_ids:
            in_cat |= set(self.coco.catToImgs[cat_id])
        in_cat &= with_ann
        valid, valid_ids = [], []
        for i, info in enumerate(self.data_infos):
            img_id = self.img_ids[i]
            if self.filter_empty_gt and img_id not in in_cat:
                continue
            if min(info["width"], info["height"]) >= min_size:
                valid.append(i)
                valid_ids.append(img_id)
        self.img_ids = valid_ids
        return valid

    # ----------------------------------------------------------------- evaluation
    def format_results(
        self, results: Sequence[Any], jsonfile_prefix: str | None = None, **kwargs: Any
    ) -> tuple[dict[str, str], tempfile.TemporaryDirectory[str] | None]:
        """Write ``<prefix>.bbox.json`` (and ``.segm.json``/``.proposal.json``) for ``results``."""
        if not isinstance(results, list):
            raise TypeError(f"results must be a list, got {type(results).__name__}")
        if len(results) != len(self):
            raise ValueError(f"{len(results)} results for {len(self)} images")
        tmp_dir = None
        if jsonfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            jsonfile_prefix = osp.join(tmp_dir.name, "results")
        files = results2json(results, self.img_ids, self.cat_ids, jsonfile_prefix)
        return files, tmp_dir

    def evaluate(  # type: ignore[override]
        self,
        results: Sequence[Any],
        metric: str | Sequence[str] = "bbox",
        logger: logging.Logger | str | None = None,
        jsonfile_prefix: str | None = None,
        classwise: bool = False,
        proposal_nums: Sequence[int] = (100, 300, 1000),
        iou_thrs: Sequence[float] | None = None,
        metric_items: str | Sequence[str] | None = None,
    ) -> OrderedDict[str, Any]:
        """COCO metrics with v2's keys (``bbox_mAP``, ``bbox_mAP_50``, ... ``_copypaste``)."""
        metrics = [metric] if isinstance(metric, str) else list(metric)
        for name in metrics:
            if name not in COCO_ALLOWED_METRICS:
                raise KeyError(
                    f"metric {name} is not supported (choose from {list(COCO_ALLOWED_METRICS)})"
                )
        eval_results: OrderedDict[str, Any] = OrderedDict()
        if "proposal_fast" in metrics:
            thrs = np.linspace(0.5, 0.95, 10) if iou_thrs is None else iou_thrs
            recalls = fast_eval_recall(list(results), self.coco, self.img_ids, proposal_nums, thrs)
            for i, num in enumerate(proposal_nums):
                eval_results[f"AR@{num}"] = recalls[i]
            metrics = [m for m in metrics if m != "proposal_fast"]
        if metrics:
            files, tmp_dir = self.format_results(list(results), jsonfile_prefix)
            try:
                eval_results.update(
                    evaluate_coco(
                        self.coco,
                        files,
                        metrics=metrics,
                        classwise=classwise,
                        proposal_nums=proposal_nums,
                        iou_thrs=iou_thrs,
                        metric_items=metric_items,
                        cat_ids=self.cat_ids,
                        img_ids=self.img_ids,
                        logger=logger,
                    )
                )
            finally:
                if tmp_dir is not None:
                    tmp_dir.cleanup()
        return eval_results


def _bad_box_reason(
    x1: float, y1: float, w: float, h: float, area: float, width: float, height: float
) -> str | None:
    """Why v2 drops the box ``[x1, y1, w, h]`` of a ``width`` x ``height`` image, or None."""
    if not all(math.isfinite(v) for v in (x1, y1, w, h)):
        return "boxes with non-finite coordinates"
    if w <= 0 or h <= 0:
        return "boxes with zero or negative size"
    if w < 1 or h < 1:
        return "boxes narrower or lower than 1 pixel"
    if area <= 0:
        return "annotations with zero or negative area"
    inter_w = max(0, min(x1 + w, width) - max(x1, 0))
    inter_h = max(0, min(y1 + h, height) - max(y1, 0))
    if inter_w * inter_h == 0:
        return "boxes outside the image"
    return None
