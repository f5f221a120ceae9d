"""``CustomDataset``: the v2 base dataset and its middle format.

Middle format (a ``.pkl`` or ``.json`` list, one entry per image)::

    {'filename': 'a.jpg', 'width': 640, 'height': 480,
     'ann': {'bboxes': ndarray[n, 4] float32 (x1, y1, x2, y2), 'labels': ndarray[n] int64,
             'bboxes_ignore': ndarray[k, 4], 'labels_ignore': ndarray[k]}}

Subclasses override :meth:`CustomDataset.load_annotations` and :meth:`CustomDataset.get_ann_info`.
Bad annotations are dropped and counted (one summary line), or raise with ``strict=True``. An
image that cannot be read raises its ``ImageLoadError`` with ``strict=True``; otherwise training
skips it with a warning (another image of the same aspect group is drawn) and a test-mode
dataset returns an :class:`~detforge.datasets.issues.UnreadableImage` in its place, which the
test loop counts and answers with an empty result (see :mod:`detforge.engine.testing`). A
training set with no image left after filtering is an error. ``pre_pipeline`` hands the
dataset's :class:`DataIssues` to the pipeline as ``results['data_issues']`` so that
``LoadImageFromFile`` can count an image whose real size differs from the annotation's (see its
``size_mismatch``); an error raised by the pipeline is re-raised naming the dataset's
annotation file.
"""

from __future__ import annotations

import json
import logging
import os.path as osp
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from detforge.datasets.issues import DataIssues, DatasetError, UnreadableImage
from detforge.datasets.transforms.compose import Compose
from detforge.evaluation import eval_map, eval_recalls
from detforge.registry import DATASETS
from detforge.utils.image import ImageLoadError
from detforge.utils.safe_pickle import load_pickle

__all__ = ["CUSTOM_ALLOWED_METRICS", "CustomDataset", "list_from_file"]

#: The metrics of VOC-style datasets (v2's ``CustomDataset.evaluate`` ``allowed_metrics``).
CUSTOM_ALLOWED_METRICS = ("mAP", "recall")

logger = logging.getLogger("detforge")


def list_from_file(path: str) -> list[str]:
    """Non-empty lines of a text file, stripped (class-name files, image-id lists)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"list file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def _load_middle_format(path: str) -> list[dict[str, Any]]:
    if path.endswith(".pkl"):
        data = load_pickle(path, "middle-format annotations")
    elif path.endswith(".json"):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    else:
        raise DatasetError(f"{path}: middle-format annotations must be .pkl or .json")
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of image entries, got {type(data).__name__}")
    return data


@DATASETS.register_module()
class CustomDataset(Dataset[dict[str, Any] | UnreadableImage]):
    """Base detection dataset (v2 ``CustomDataset``).

    Args:
        ann_file: Annotation file (middle format here; subclasses read their own formats).
        pipeline: Transform configs, applied to every sample.
        classes: ``None`` (the class's ``CLASSES``), a tuple/list of names, or a text file with
            one class name per line.
        data_root: Joined onto relative ``ann_file``, ``img_prefix``, ``seg_prefix`` and
            ``proposal_file``.
        img_prefix: Folder of the images.
        seg_prefix: Folder of semantic segmentation maps.
        seg_suffix: Extension of the segmentation maps.
        proposal_file: Pre-computed proposals (a pickle list, one array per image).
        test_mode: Keep every image and do not load annotations into the pipeline.
        filter_empty_gt: Drop training images without usable annotations (where supported).
        file_client_args: Accepted for v2 compatibility; only the local disk is supported.
        strict: Raise on the first bad annotation or unreadable image instead of skipping it.
        max_refetch: How many other images a training sample may fall back to when its
            pipeline returns ``None`` before the dataset gives up.
    """

    CLASSES: Sequence[str] | None = None
    #: the metrics :meth:`evaluate` computes (checked before testing starts)
    ALLOWED_METRICS: tuple[str, ...] = CUSTOM_ALLOWED_METRICS
    PALETTE: list[tuple[int, int, int]] | None = None

    def __init__(
        self,
        ann_file: str,
        pipeline: Sequence[Any],
        classes: str | Sequence[str] | None = None,
        data_root: str | None = None,
        img_prefix: str = "",
        seg_prefix: str | None = None,
        seg_suffix: str = ".png",
        proposal_file: str | None = None,
        test_mode: bool = False,
        filter_empty_gt: bool = True,
        file_client_args: Mapping[str, Any] | None = None,
        strict: bool = False,
        max_refetch: int = 100,
    ) -> None:
        backend = (file_client_args or {}).get("backend", "disk")
        if backend != "disk":
            raise DatasetError(f"file_client_args backend {backend!r} is not supported; use 'disk'")
        self.ann_file = ann_file
        self.data_root = data_root
        self.img_prefix = img_prefix
        self.seg_prefix = seg_prefix
        self.seg_suffix = seg_suffix
        self.proposal_file = proposal_file
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.strict = strict
        self.max_refetch = max_refetch
        if data_root is not None:
            self.ann_file = _join(data_root, ann_file) or ann_file
            self.img_prefix = _join(data_root, img_prefix) or img_prefix
            self.seg_prefix = _join(data_root, self.seg_prefix)
            self.proposal_file = _join(data_root, self.proposal_file)
        self.CLASSES = self.get_classes(classes)
        self.issues = DataIssues(f"{type(self).__name__}({self.ann_file})", strict=strict)
        if not osp.exists(self.ann_file):
            raise FileNotFoundError(
                f"{type(self).__name__}: annotation file not found: {self.ann_file} "
                "(check data_root/ann_file in the config, or set DETFORGE_DATASETS)"
            )
        self.data_infos = self.load_annotations(self.ann_file)
        self.proposals = self.load_proposals(self.proposal_file) if self.proposal_file else None
        if not test_mode:
            loaded = len(self.data_infos)
            valid = self._filter_imgs()
            self.data_infos = [self.data_infos[i] for i in valid]
            if self.proposals is not None:
                self.proposals = [self.proposals[i] for i in valid]
            self._set_group_flag()
            if not self.data_infos:
                self.issues.report()
                raise DatasetError(
                    f"{self.issues.source}: no training images: of the {loaded} images loaded, "
                    + (
                        f"none has both a shorter side of at least 32 pixels and an annotation "
                        f"of classes {self.CLASSES} (filter_empty_gt=True)"
                        if filter_empty_gt
                        else "none has a shorter side of at least 32 pixels"
                    )
                )
        self.issues.report()
        self.pipeline = Compose(pipeline)

    # ---------------------------------------------------------------- annotations
    def __len__(self) -> int:
        return len(self.data_infos)

    def load_annotations(self, ann_file: str) -> list[dict[str, Any]]:
        """Read the middle format and check every entry's boxes and labels."""
        infos = _load_middle_format(ann_file)
        for info in infos:
            ann = info.get("ann")
            if ann is not None:
                info["ann"] = self._check_ann(ann, str(info.get("filename", "?")))
        return infos

    def _check_ann(self, ann: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Convert to the contract's dtypes and drop boxes/labels that cannot be used."""
        out = dict(ann)
        for box_key, label_key in (("bboxes", "labels"), ("bboxes_ignore", "labels_ignore")):
            if box_key not in ann:
                continue
            boxes = np.asarray(ann[box_key], dtype=np.float32).reshape(-1, 4)
            if label_key not in ann:
                if box_key == "bboxes":
                    raise DatasetError(f"{self.ann_file}: {where} has 'bboxes' but no 'labels'")
                out[box_key] = boxes
                continue
            labels = np.asarray(ann[label_key], dtype=np.int64).reshape(-1)
            if len(labels) != len(boxes):
                raise DatasetError(
                    f"{self.ann_file}: {where} has {len(boxes)} {box_key} but "
                    f"{len(labels)} {label_key}"
                )
            keep = self._valid_boxes(boxes, labels, where)
            out[box_key] = boxes[keep]
            out[label_key] = labels[keep]
        return out

    def _valid_boxes(self, boxes: np.ndarray, labels: np.ndarray, where: str) -> np.ndarray:
        """Mask of usable boxes; the others are reported (or raise in strict mode)."""
        keep = np.ones(len(boxes), dtype=bool)
        num_classes = None if self.CLASSES is None else len(self.CLASSES)
        for i, (box, label) in enumerate(zip(boxes, labels, strict=True)):
            if not np.isfinite(box).all():
                self.issues.add("boxes with non-finite coordinates", where, f"bbox {box.tolist()}")
                keep[i] = False
            elif box[2] <= box[0] or box[3] <= box[1]:
                self.issues.add("boxes with zero or negative size", where, f"bbox {box.tolist()}")
                keep[i] = False
            elif num_classes is not None and not 0 <= label < num_classes:
                self.issues.add("labels out of range", where, f"label {label} of {num_classes}")
                keep[i] = False
        return keep

    def load_proposals(self, proposal_file: str) -> list[np.ndarray]:
        proposals: list[np.ndarray] = load_pickle(proposal_file, "proposal file")
        if len(proposals) != len(self.data_infos):
            raise DatasetError(
                f"{proposal_file}: {len(proposals)} proposal arrays "
                f"for {len(self.data_infos)} images"
            )
        return proposals

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        """Annotation of image ``idx``: ``bboxes``, ``labels``, ``bboxes_ignore``, ..."""
        return dict(self.data_infos[idx]["ann"])

    def get_cat_ids(self, idx: int) -> list[int]:
        """Label indices present in image ``idx``."""
        return [int(x) for x in self.get_ann_info(idx)["labels"]]

    def get_cat2imgs(self) -> dict[int, list[int]]:
        """For each label, the indices of the images that contain it."""
        if self.CLASSES is None:
            raise DatasetError(f"{type(self).__name__}: CLASSES is not set")
        cat2imgs: dict[int, list[int]] = {i: [] for i in range(len(self.CLASSES))}
        for idx in range(len(self)):
            for cat in set(self.get_cat_ids(idx)):
                cat2imgs[cat].append(idx)
        return cat2imgs

    def _filter_imgs(self, min_size: int = 32) -> list[int]:
        """Keep images whose shorter side is at least ``min_size`` (v2)."""
        if self.filter_empty_gt:
            logger.debug("CustomDataset does not filter images without annotations")
        return [
            i
            for i, info in enumerate(self.data_infos)
            if min(info["width"], info["height"]) >= min_size
        ]

    def _set_group_flag(self) -> None:
        """Aspect-ratio group per image: 1 if wider than tall, else 0 (for GroupSampler)."""
        self.flag = np.zeros(len(self), dtype=np.uint8)
        for i, info in enumerate(self.data_infos):
            if info["width"] / info["height"] > 1:
                self.flag[i] = 1

    @classmethod
    def get_classes(cls, classes: str | Sequence[str] | None = None) -> Sequence[str] | None:
        """Resolve ``classes``: ``None`` → ``CLASSES``, a path → a list of one name per line,
        a tuple or list → itself (the type is kept, as v2).

        Example:
            >>> CustomDataset.get_classes(["cat", "dog"])
            ['cat', 'dog']
        """
        if classes is None:
            return cls.CLASSES
        if isinstance(classes, str):
            return list(list_from_file(classes))
        if isinstance(classes, tuple | list):
            return classes
        raise ValueError(f"Unsupported type {type(classes)} of classes.")

    # -------------------------------------------------------------------- samples
    def pre_pipeline(self, results: dict[str, Any]) -> None:
        results["img_prefix"] = self.img_prefix
        results["seg_prefix"] = self.seg_prefix
        results["proposal_file"] = self.proposal_file
        results["bbox_fields"] = []
        results["mask_fields"] = []
        results["seg_fields"] = []
        # lets LoadImageFromFile count (or, strict, raise on) an image of the wrong size
        results["data_issues"] = self.issues

    def prepare_train_img(self, idx: int) -> dict[str, Any] | None:
        results: dict[str, Any] = dict(
            img_info=self.data_infos[idx], ann_info=self.get_ann_info(idx)
        )
        if self.proposals is not None:
            results["proposals"] = self.proposals[idx]
        self.pre_pipeline(results)
        return self.pipeline(results)

    def prepare_test_img(self, idx: int) -> dict[str, Any] | None:
        results: dict[str, Any] = dict(img_info=self.data_infos[idx])
        if self.proposals is not None:
            results["proposals"] = self.proposals[idx]
        self.pre_pipeline(results)
        return self.pipeline(results)

    def _rand_another(self, idx: int) -> int:
        pool = np.where(self.flag == self.flag[idx])[0]
        return int(np.random.choice(pool))

    def __getitem__(self, idx: int) -> dict[str, Any] | UnreadableImage:
        try:
            return self._get_sample(idx)
        except DatasetError as exc:
            if self.issues.source in str(exc):
                raise
            raise DatasetError(f"{self.issues.source}: {exc}") from exc

    def _prepare(self, idx: int) -> dict[str, Any] | UnreadableImage | None:
        """The sample of ``idx`` (``None`` when the pipeline drops it), or an
        :class:`UnreadableImage` when its image cannot be read (raised in strict mode)."""
        try:
            return self.prepare_test_img(idx) if self.test_mode else self.prepare_train_img(idx)
        except ImageLoadError as exc:
            if self.strict:
                raise
            return UnreadableImage(str(self.data_infos[idx].get("filename", idx)), str(exc))

    def _get_sample(self, idx: int) -> dict[str, Any] | UnreadableImage:
        if self.test_mode:
            sample = self._prepare(idx)
            if sample is None:
                raise DatasetError(
                    f"{self.issues.source}: the test pipeline dropped "
                    f"{self.data_infos[idx].get('filename')}"
                )
            return sample
        tried = []
        for _ in range(self.max_refetch + 1):
            tried.append(str(self.data_infos[idx].get("filename", idx)))
            data = self._prepare(idx)
            if isinstance(data, UnreadableImage):
                self.issues.skip_unreadable(data)
                data = None
            if data is not None:
                return data
            idx = self._rand_another(idx)
        shown = ", ".join(list(dict.fromkeys(tried))[:10])
        raise DatasetError(
            f"{self.issues.source}: the pipeline returned None for {len(tried)} samples in a row "
            f"({shown}); check the images and the pipeline (e.g. RandomCrop dropping every box)"
        )

    # ----------------------------------------------------------------- evaluation
    def format_results(self, results: Sequence[Any], **kwargs: Any) -> Any:
        """Nothing to format for the middle format (subclasses write their own files)."""
        return None

    def evaluate(
        self,
        results: Sequence[Any],
        metric: str | Sequence[str] = "mAP",
        logger: logging.Logger | str | None = None,
        proposal_nums: Sequence[int] = (100, 300, 1000),
        iou_thr: float | Sequence[float] = 0.5,
        scale_ranges: Sequence[tuple[float, float]] | None = None,
    ) -> OrderedDict[str, float]:
        """VOC-style ``mAP`` (``AP50``... per IoU threshold) or proposal ``recall`` (v2 keys)."""
        annotations = [self.get_ann_info(i) for i in range(len(self))]
        return self.evaluate_annotations(
            results,
            annotations,
            metric=metric,
            logger=logger,
            proposal_nums=proposal_nums,
            iou_thr=iou_thr,
            scale_ranges=scale_ranges,
        )

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
        """:meth:`evaluate` against given annotations (``ConcatDataset`` evaluates as one)."""
        return evaluate_map_or_recall(
            results,
            annotations,
            metric=metric,
            classes=self.CLASSES,
            logger=logger,
            proposal_nums=proposal_nums,
            iou_thr=iou_thr,
            scale_ranges=scale_ranges,
        )

    def __repr__(self) -> str:
        mode = "Test" if self.test_mode else "Train"
        lines = [f"\n{type(self).__name__} {mode} dataset with number of images {len(self)}, "]
        if self.CLASSES is None:
            return lines[0] + "and no CLASSES set.\n"
        counts = np.zeros(len(self.CLASSES) + 1, dtype=np.int64)
        for idx in range(len(self)):
            labels = self.get_ann_info(idx)["labels"]
            if len(labels) == 0:
                counts[-1] += 1
            else:
                counts[: len(self.CLASSES)] += np.bincount(labels, minlength=len(self.CLASSES))
        lines.append("and instance counts: ")
        rows = [f"{i} [{name}]: {counts[i]}" for i, name in enumerate(self.CLASSES)]
        rows.append(f"-1 background: {counts[-1]}")
        return "".join(lines) + "\n" + "\n".join(rows) + "\n"


def evaluate_map_or_recall(
    results: Sequence[Any],
    annotations: Sequence[Mapping[str, Any]],
    metric: str | Sequence[str] = "mAP",
    classes: Sequence[str] | str | None = None,
    logger: logging.Logger | str | None = None,
    proposal_nums: Sequence[int] = (100, 300, 1000),
    iou_thr: float | Sequence[float] = 0.5,
    scale_ranges: Sequence[tuple[float, float]] | None = None,
    use_legacy_coordinate: bool = False,
) -> OrderedDict[str, float]:
    """v2's ``CustomDataset.evaluate`` body, shared by the VOC-style datasets and wrappers."""
    if not isinstance(metric, str):
        if len(metric) != 1:
            raise ValueError(f"evaluate one metric at a time, got {list(metric)}")
        metric = metric[0]
    if metric not in CUSTOM_ALLOWED_METRICS:
        choices = " or ".join(repr(m) for m in CUSTOM_ALLOWED_METRICS)
        raise KeyError(f"metric {metric} is not supported (use {choices})")
    if len(results) != len(annotations):
        raise ValueError(f"{len(results)} results for {len(annotations)} images")
    iou_thrs = [iou_thr] if isinstance(iou_thr, float | int) else list(iou_thr)
    eval_results: OrderedDict[str, float] = OrderedDict()
    if metric == "mAP":
        mean_aps = []
        for thr in iou_thrs:
            mean_ap, _ = eval_map(
                results,
                [dict(a) for a in annotations],
                scale_ranges=scale_ranges,
                iou_thr=thr,
                dataset=classes,
                logger=logger,
                use_legacy_coordinate=use_legacy_coordinate,
            )
            mean_aps.append(mean_ap)
            eval_results[f"AP{int(thr * 100):02d}"] = round(mean_ap, 3)
        eval_results["mAP"] = sum(mean_aps) / len(mean_aps)
    else:
        gt_bboxes = [ann["bboxes"] for ann in annotations]
        recalls = eval_recalls(
            gt_bboxes,
            results,
            proposal_nums,
            iou_thrs,
            logger=logger,
            use_legacy_coordinate=use_legacy_coordinate,
        )
        for i, num in enumerate(proposal_nums):
            for j, iou in enumerate(iou_thrs):
                eval_results[f"recall@{num}@{iou}"] = recalls[i, j]
        if recalls.shape[1] > 1:
            average = recalls.mean(axis=1)
            for i, num in enumerate(proposal_nums):
                eval_results[f"AR@{num}"] = average[i]
    return eval_results


def _join(root: str, path: str | None) -> str | None:
    if path is None or osp.isabs(path):
        return path
    return osp.join(root, path)
