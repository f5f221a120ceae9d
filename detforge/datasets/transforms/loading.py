"""Loading transforms: images from disk (or a webcam frame), annotations, proposals.

These fill the v2 ``results`` keys a dataset's ``pre_pipeline`` leaves open: ``filename``,
``ori_filename``, ``img``, ``img_shape``, ``ori_shape``, ``img_fields``, and ``gt_bboxes``,
``gt_labels``, ``gt_bboxes_ignore``, ``gt_masks``, ``gt_semantic_seg``, ``proposals`` together
with the ``bbox_fields`` / ``mask_fields`` / ``seg_fields`` lists that later transforms walk.
"""

from __future__ import annotations

import logging
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.datasets.issues import DataIssues, DatasetError
from detforge.datasets.transforms._declared_size import (
    SIZE_MISMATCH_POLICIES,
    rescale_annotations,
    rescale_loaded_gt,
    size_mismatch,
)
from detforge.datasets.transforms._utils import check_arg
from detforge.registry import TRANSFORMS
from detforge.structures.masks import rle_decode
from detforge.utils.image import imread

__all__ = [
    "FilterAnnotations",
    "LoadAnnotations",
    "LoadImageFromFile",
    "LoadImageFromWebcam",
    "LoadMultiChannelImageFromFiles",
    "LoadProposals",
]

logger = logging.getLogger("detforge")

_DISK = {"backend": "disk"}


def _check_file_client_args(args: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """Accept v2's ``file_client_args`` for compatibility; only the local disk is supported."""
    args = dict(_DISK if args is None else args)
    backend = args.get("backend", "disk")
    if backend != "disk" or set(args) - {"backend"}:
        raise ValueError(
            f"{owner}: file_client_args={args!r} is not supported; detforge reads images from "
            "the local disk only (use file_client_args=dict(backend='disk') or leave it out)"
        )
    return args


def _join(prefix: str | None, name: str) -> str:
    return name if prefix is None else osp.join(prefix, name)


def _img_info(results: Mapping[str, Any], owner: str) -> Mapping[str, Any]:
    try:
        return results["img_info"]
    except KeyError:
        raise KeyError(
            f"{owner}: results has no 'img_info' (a dict with 'filename'); keys are "
            f"{sorted(results)}"
        ) from None


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Read ``img_prefix / img_info['filename']`` into ``results['img']``.

    Sets ``filename`` (prefix joined), ``ori_filename``, ``img`` (uint8 BGR ``ndarray[H, W, 3]``
    unless told otherwise), ``img_shape = ori_shape = img.shape`` and ``img_fields = ['img']``.

    When ``img_info`` declares ``height`` and ``width`` (COCO json, VOC ``<size>``) and the
    decoded image has another size, the annotation's boxes point into the wrong frame; what
    happens then is ``size_mismatch``:

    - ``'rescale'`` (default): ``ann_info``'s boxes and masks (and any ``gt_*`` already loaded)
      are scaled to the real size, ``img_info`` is replaced by a copy with the real size, and
      a warning names the file once.
    - ``'drop'``: the sample is dropped (``None``; a training dataset draws another image).
    - ``'error'``: :class:`DatasetError` naming the file and both sizes.

    Rescaled and dropped images are counted in the dataset's summary of bad data, and a
    dataset built with ``strict=True`` raises instead. A width/height swap explained by an EXIF
    orientation the decoder applied is no mismatch. Load the image before the annotations,
    as every v2 pipeline does.

    Args:
        to_float32: Convert the image to float32.
        color_type: Read flag: ``'color'``, ``'grayscale'`` or ``'unchanged'``.
        channel_order: ``'bgr'`` or ``'rgb'``.
        file_client_args: Accepted for v2 configs; only ``dict(backend='disk')`` works.
        size_mismatch: ``'rescale'``, ``'drop'`` or ``'error'`` (see above).

    Raises:
        ImageLoadError: the file is missing or unreadable (the message names it).
        DatasetError: with ``size_mismatch='error'`` (or a strict dataset), the decoded size
            is not the declared one.

    Example:
        >>> LoadImageFromFile()
        LoadImageFromFile(to_float32=False, color_type='color', channel_order='bgr', \
file_client_args={'backend': 'disk'}, size_mismatch='rescale')
    """

    def __init__(
        self,
        to_float32: bool = False,
        color_type: str = "color",
        channel_order: str = "bgr",
        file_client_args: Mapping[str, Any] | None = None,
        size_mismatch: str = "rescale",
    ) -> None:
        if size_mismatch not in SIZE_MISMATCH_POLICIES:
            raise ValueError(
                f"{type(self).__name__}: size_mismatch must be one of "
                f"{list(SIZE_MISMATCH_POLICIES)}, got {size_mismatch!r}"
            )
        self.to_float32 = to_float32
        self.color_type = color_type
        self.channel_order = channel_order
        self.file_client_args = _check_file_client_args(file_client_args, type(self).__name__)
        self.size_mismatch = size_mismatch
        self._reported: set[str] = set()

    def _read(self, filename: str) -> np.ndarray:
        img = imread(filename, flag=self.color_type, channel_order=self.channel_order)
        return img.astype(np.float32) if self.to_float32 else img

    def __call__(self, results: dict[str, Any]) -> dict[str, Any] | None:
        info = _img_info(results, type(self).__name__)
        name = info["filename"]
        filename = _join(results.get("img_prefix"), name)
        img = self._read(filename)
        declared = size_mismatch(info, img.shape, filename, self.color_type)
        if declared is not None and not self._on_size_mismatch(results, filename, declared, img):
            return None
        results["filename"] = filename
        results["ori_filename"] = name
        results["img"] = img
        results["img_shape"] = img.shape
        results["ori_shape"] = img.shape
        results["img_fields"] = ["img"]
        return results

    def _on_size_mismatch(
        self, results: dict[str, Any], filename: str, declared: tuple[int, int], img: np.ndarray
    ) -> bool:
        """Apply the policy; False when the sample is to be dropped."""
        real = (int(img.shape[0]), int(img.shape[1]))
        sizes = (
            f"the annotation declares {declared[1]}x{declared[0]} (width x height), "
            f"the decoded image is {real[1]}x{real[0]}"
        )
        if self.size_mismatch == "error":
            raise DatasetError(f"{type(self).__name__}: {filename}: {sizes}")
        drop = self.size_mismatch == "drop"
        if filename not in self._reported:
            # once per file: the summary counts images, and the log is not flooded
            issues = results.get("data_issues")
            if isinstance(issues, DataIssues):  # raises for a strict dataset
                kind = "images whose real size differs from the annotation's"
                if drop:
                    issues.add(kind, filename, sizes)
                else:
                    issues.add(f"{kind} (boxes and masks rescaled)", filename, sizes, "fixed")
            self._reported.add(filename)
            what = "dropped (size_mismatch='drop')" if drop else "boxes and masks are rescaled"
            logger.warning("%s: %s; %s", filename, sizes, what)
        if drop:
            return False
        if results.get("ann_info") is not None:
            results["ann_info"] = rescale_annotations(results["ann_info"], declared, real)
        results["img_info"] = {**results["img_info"], "height": real[0], "width": real[1]}
        rescale_loaded_gt(results, declared, real)
        return True

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(to_float32={self.to_float32}, "
            f"color_type='{self.color_type}', channel_order='{self.channel_order}', "
            f"file_client_args={self.file_client_args}, size_mismatch='{self.size_mismatch}')"
        )


@TRANSFORMS.register_module()
class LoadImageFromWebcam(LoadImageFromFile):
    """Like :class:`LoadImageFromFile`, for an image already in ``results['img']``.

    ``filename`` and ``ori_filename`` are set to None.

    Example:
        >>> out = LoadImageFromWebcam()({'img': np.zeros((4, 6, 3), np.uint8)})
        >>> out['img_shape'], out['filename']
        ((4, 6, 3), None)
    """

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(results.get("img"), np.ndarray):
            raise TypeError(
                "LoadImageFromWebcam: results['img'] must be an ndarray, got "
                f"{type(results.get('img')).__name__}"
            )
        img = results["img"]
        if self.to_float32:
            img = img.astype(np.float32)
        results["filename"] = None
        results["ori_filename"] = None
        results["img"] = img
        results["img_shape"] = img.shape
        results["ori_shape"] = img.shape
        results["img_fields"] = ["img"]
        return results


@TRANSFORMS.register_module()
class LoadMultiChannelImageFromFiles:
    """Read a list of files (``img_info['filename']``) and stack them on a new last axis.

    Besides the keys of :class:`LoadImageFromFile` this sets ``pad_shape``,
    ``scale_factor = 1.0`` and an identity ``img_norm_cfg``, as v2 does.

    Args:
        to_float32: Convert the stacked image to float32.
        color_type: Read flag for every file (default ``'unchanged'``).
        file_client_args: Accepted for v2 configs; only ``dict(backend='disk')`` works.

    Example:
        >>> LoadMultiChannelImageFromFiles()
        LoadMultiChannelImageFromFiles(to_float32=False, color_type='unchanged', \
file_client_args={'backend': 'disk'})
    """

    def __init__(
        self,
        to_float32: bool = False,
        color_type: str = "unchanged",
        file_client_args: Mapping[str, Any] | None = None,
    ) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.file_client_args = _check_file_client_args(file_client_args, type(self).__name__)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        names = _img_info(results, type(self).__name__)["filename"]
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise TypeError(
                f"{type(self).__name__}: img_info['filename'] must be a list of files, "
                f"got {names!r}"
            )
        prefix = results.get("img_prefix")
        filenames = [_join(prefix, name) for name in names]
        channels = [imread(name, flag=self.color_type) for name in filenames]
        shapes = {c.shape for c in channels}
        if len(shapes) != 1:
            raise ValueError(
                f"{type(self).__name__}: files {filenames} have different shapes {shapes}"
            )
        img = np.stack(channels, axis=-1)
        if self.to_float32:
            img = img.astype(np.float32)
        results["filename"] = filenames
        results["ori_filename"] = names
        results["img"] = img
        results["img_shape"] = img.shape
        results["ori_shape"] = img.shape
        results["img_fields"] = ["img"]
        results["pad_shape"] = img.shape
        results["scale_factor"] = 1.0
        num_channels = 1 if img.ndim < 3 else img.shape[2]
        results["img_norm_cfg"] = dict(
            mean=np.zeros(num_channels, dtype=np.float32),
            std=np.ones(num_channels, dtype=np.float32),
            to_rgb=False,
        )
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(to_float32={self.to_float32}, "
            f"color_type='{self.color_type}', file_client_args={self.file_client_args})"
        )


def _boxes(value: Any, key: str) -> np.ndarray:
    boxes = np.asarray(value, dtype=np.float32)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"ann_info['{key}'] must have shape (N, 4), got {boxes.shape}")
    return boxes.copy()


def _poly2mask(mask_ann: Any, height: int, width: int) -> np.ndarray:
    """Rasterise one instance (polygons, uncompressed or compressed RLE) to ``ndarray[H, W]``.

    Polygons with fewer than 3 points are skipped, as :class:`PolygonMasks` does (pycocotools
    would read a 2-point polygon as a box); an instance without any is an empty mask.
    """
    from pycocotools import mask as mask_utils

    if isinstance(mask_ann, list):
        polygons = [p for p in mask_ann if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(mask_ann, Mapping) and isinstance(mask_ann.get("counts"), list):
        rle = mask_utils.frPyObjects(dict(mask_ann), height, width)
    elif isinstance(mask_ann, Mapping) and "counts" in mask_ann:
        rle = dict(mask_ann)
    else:
        raise TypeError(
            f"a mask annotation must be a list of polygons or an RLE dict, got {mask_ann!r:.80}"
        )
    return rle_decode(rle)


@TRANSFORMS.register_module()
class LoadAnnotations:
    """Copy boxes, labels, masks and the semantic map from ``results['ann_info']``.

    Args:
        with_bbox: Load ``gt_bboxes`` (and ``gt_bboxes_ignore`` when present).
        with_label: Load ``gt_labels``.
        with_mask: Load ``gt_masks`` (needs ``img_info['height']`` and ``['width']``).
        with_seg: Read ``seg_prefix / ann_info['seg_map']`` unchanged into
            ``gt_semantic_seg``.
        poly2mask: Rasterise polygons into :class:`BitmapMasks`; otherwise keep
            :class:`PolygonMasks`.
        denorm_bbox: Boxes are relative to the image size; multiply them by it.
        file_client_args: Accepted for v2 configs; only ``dict(backend='disk')`` works.

    Example:
        >>> results = {'ann_info': {'bboxes': np.array([[1, 2, 3, 4]], np.float32),
        ...                         'labels': np.array([0])}}
        >>> out = LoadAnnotations()(results)
        >>> out['gt_bboxes'].dtype.name, out['bbox_fields']
        ('float32', ['gt_bboxes'])
    """

    def __init__(
        self,
        with_bbox: bool = True,
        with_label: bool = True,
        with_mask: bool = False,
        with_seg: bool = False,
        poly2mask: bool = True,
        denorm_bbox: bool = False,
        file_client_args: Mapping[str, Any] | None = None,
    ) -> None:
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.with_seg = with_seg
        self.poly2mask = poly2mask
        self.denorm_bbox = denorm_bbox
        self.file_client_args = _check_file_client_args(file_client_args, type(self).__name__)

    @staticmethod
    def _ann_info(results: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return results["ann_info"]
        except KeyError:
            raise KeyError(
                f"LoadAnnotations: results has no 'ann_info'; keys are {sorted(results)}"
            ) from None

    def _load_bboxes(self, results: dict[str, Any]) -> dict[str, Any]:
        ann_info = self._ann_info(results)
        if "bboxes" not in ann_info:
            raise KeyError(
                f"LoadAnnotations: ann_info has no 'bboxes'; keys are {sorted(ann_info)}"
            )
        bboxes = _boxes(ann_info["bboxes"], "bboxes")
        if self.denorm_bbox and len(bboxes):
            h, w = results["img_shape"][:2]
            bboxes[:, 0::2] *= w
            bboxes[:, 1::2] *= h
        results["gt_bboxes"] = bboxes
        bbox_fields = results.setdefault("bbox_fields", [])
        if ann_info.get("bboxes_ignore") is not None:
            results["gt_bboxes_ignore"] = _boxes(ann_info["bboxes_ignore"], "bboxes_ignore")
            bbox_fields.append("gt_bboxes_ignore")
        bbox_fields.append("gt_bboxes")
        if ann_info.get("gt_is_group_ofs") is not None:
            results["gt_is_group_ofs"] = np.array(ann_info["gt_is_group_ofs"], copy=True)
        return results

    def _load_labels(self, results: dict[str, Any]) -> dict[str, Any]:
        ann_info = self._ann_info(results)
        if "labels" not in ann_info:
            raise KeyError(
                f"LoadAnnotations: ann_info has no 'labels'; keys are {sorted(ann_info)}"
            )
        results["gt_labels"] = np.array(ann_info["labels"], dtype=np.int64, copy=True)
        return results

    @staticmethod
    def process_polygons(polygons: Sequence[Sequence[float]]) -> list[np.ndarray]:
        """Turn one instance's polygons into arrays, dropping those with < 3 points."""
        arrays = [np.asarray(p) for p in polygons]
        return [p for p in arrays if len(p) % 2 == 0 and len(p) >= 6]

    def _load_masks(self, results: dict[str, Any]) -> dict[str, Any]:
        from detforge.structures.masks import BitmapMasks, PolygonMasks

        info = _img_info(results, type(self).__name__)
        if "height" not in info or "width" not in info:
            raise KeyError(
                "LoadAnnotations(with_mask=True): img_info needs 'height' and 'width'; "
                f"keys are {sorted(info)}"
            )
        h, w = int(info["height"]), int(info["width"])
        anns = self._ann_info(results).get("masks")
        if anns is None:
            raise KeyError("LoadAnnotations(with_mask=True): ann_info has no 'masks'")
        for k, ann in enumerate(anns):
            if not isinstance(ann, list | Mapping):
                raise DatasetError(
                    f"LoadAnnotations(with_mask=True): {info.get('filename')}: instance {k} has "
                    f"no mask (polygons or RLE), got {ann!r:.60}"
                )
        gt_masks: Any
        if self.poly2mask:
            bitmaps = [_poly2mask(ann, h, w) for ann in anns]
            stacked = np.stack(bitmaps) if bitmaps else np.zeros((0, h, w), dtype=np.uint8)
            gt_masks = BitmapMasks(stacked, h, w)
        else:
            gt_masks = PolygonMasks([self.process_polygons(p) for p in anns], h, w)
        results["gt_masks"] = gt_masks
        results.setdefault("mask_fields", []).append("gt_masks")
        return results

    def _load_semantic_seg(self, results: dict[str, Any]) -> dict[str, Any]:
        ann_info = self._ann_info(results)
        if "seg_map" not in ann_info:
            raise KeyError("LoadAnnotations(with_seg=True): ann_info has no 'seg_map'")
        filename = _join(results.get("seg_prefix"), ann_info["seg_map"])
        results["gt_semantic_seg"] = imread(filename, flag="unchanged").squeeze()
        results.setdefault("seg_fields", []).append("gt_semantic_seg")
        return results

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if self.with_bbox:
            results = self._load_bboxes(results)
        if self.with_label:
            results = self._load_labels(results)
        if self.with_mask:
            results = self._load_masks(results)
        if self.with_seg:
            results = self._load_semantic_seg(results)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, "
            f"with_mask={self.with_mask}, with_seg={self.with_seg}, "
            f"poly2mask={self.poly2mask}, file_client_args={self.file_client_args})"
        )


@TRANSFORMS.register_module()
class LoadProposals:
    """Keep the first four columns of ``results['proposals']`` and register them as boxes.

    Args:
        num_max_proposals: Keep at most this many (all when None). An empty set becomes one
            all-zero box, as in v2.

    Example:
        >>> out = LoadProposals(2)({'proposals': np.ones((5, 5), np.float32)})
        >>> out['proposals'].shape, out['bbox_fields']
        ((2, 4), ['proposals'])
    """

    def __init__(self, num_max_proposals: int | None = None) -> None:
        self.num_max_proposals = num_max_proposals

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "proposals" not in results:
            raise KeyError("LoadProposals: results has no 'proposals' (set proposal_file)")
        proposals = np.asarray(results["proposals"])
        check_arg(
            proposals.ndim == 2 and proposals.shape[1] in (4, 5),
            f"LoadProposals: proposals should have shapes (n, 4) or (n, 5), but found "
            f"{proposals.shape}",
        )
        proposals = proposals[:, :4]
        if self.num_max_proposals is not None:
            proposals = proposals[: self.num_max_proposals]
        if len(proposals) == 0:
            proposals = np.zeros((1, 4), dtype=np.float32)
        results["proposals"] = proposals
        results.setdefault("bbox_fields", []).append("proposals")
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_max_proposals={self.num_max_proposals})"


@TRANSFORMS.register_module()
class FilterAnnotations:
    """Drop instances whose box is too small or whose mask is too sparse.

    ``gt_bboxes``, ``gt_labels`` and ``gt_masks`` are filtered together.

    Args:
        min_gt_bbox_wh: A box is kept when ``w > min_w`` and ``h > min_h``.
        min_gt_mask_area: A mask is kept when its area is at least this.
        by_box: Filter by box size.
        by_mask: Filter by mask area.
        keep_empty: Despite the name (kept from v2), return None, dropping the sample, when
            nothing is left; with False an empty sample is returned.

    Example:
        >>> boxes = np.array([[0, 0, 10, 10], [0, 0, 0.5, 10]], np.float32)
        >>> out = FilterAnnotations()({'gt_bboxes': boxes, 'gt_labels': np.array([1, 2])})
        >>> out['gt_labels'].tolist()
        [1]
    """

    def __init__(
        self,
        min_gt_bbox_wh: tuple[float, float] = (1.0, 1.0),
        min_gt_mask_area: int = 1,
        by_box: bool = True,
        by_mask: bool = False,
        keep_empty: bool = True,
    ) -> None:
        check_arg(by_box or by_mask, "FilterAnnotations: set by_box or by_mask")
        self.min_gt_bbox_wh = min_gt_bbox_wh
        self.min_gt_mask_area = min_gt_mask_area
        self.by_box = by_box
        self.by_mask = by_mask
        self.keep_empty = keep_empty

    def __call__(self, results: dict[str, Any]) -> dict[str, Any] | None:
        tests: list[np.ndarray] = []
        num = 0
        if self.by_box:
            if "gt_bboxes" not in results:
                raise KeyError("FilterAnnotations(by_box=True): results has no 'gt_bboxes'")
            boxes = results["gt_bboxes"]
            num = boxes.shape[0]
            w = boxes[:, 2] - boxes[:, 0]
            h = boxes[:, 3] - boxes[:, 1]
            tests.append((w > self.min_gt_bbox_wh[0]) & (h > self.min_gt_bbox_wh[1]))
        if self.by_mask:
            if "gt_masks" not in results:
                raise KeyError("FilterAnnotations(by_mask=True): results has no 'gt_masks'")
            num = len(results["gt_masks"])
            tests.append(np.asarray(results["gt_masks"].areas) >= self.min_gt_mask_area)
        if num == 0:
            return results
        keep_mask = tests[0]
        for test in tests[1:]:
            keep_mask = keep_mask & test
        keep = keep_mask.nonzero()[0]
        for key in ("gt_bboxes", "gt_labels", "gt_masks"):
            if key in results:
                results[key] = results[key][keep]
        if keep.size == 0 and self.keep_empty:
            return None
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_gt_bbox_wh={self.min_gt_bbox_wh}, "
            f"min_gt_mask_area={self.min_gt_mask_area}, by_box={self.by_box}, "
            f"by_mask={self.by_mask}, keep_empty={self.keep_empty})"
        )
