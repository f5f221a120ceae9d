"""Multi-image mixing (``Mosaic``, ``MixUp``, ``CopyPaste``) and ``RandomAffine`` (YOLOX).

The mixing transforms run inside the ``MultiImageMixDataset`` wrapper: it calls
``transform.get_indexes(dataset)``, loads those samples through its pre-pipeline, puts their
results dicts in ``results['mix_results']`` and calls the transform (which leaves
``mix_results`` in place for the wrapper to remove). Random draws use the global ``np.random``
state in MMDetection v2's order. Like v2, ``Mosaic``, ``MixUp`` and ``RandomAffine`` handle
images, ``gt_bboxes`` and ``gt_labels`` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from detforge.datasets.transforms._utils import check_arg
from detforge.registry import TRANSFORMS
from detforge.structures.masks import BitmapMasks
from detforge.utils.image import imresize

__all__ = ["CopyPaste", "MixUp", "Mosaic", "RandomAffine", "find_inside_bboxes"]

Results = dict[str, Any]


def find_inside_bboxes(bboxes: np.ndarray, img_h: float, img_w: float) -> np.ndarray:
    """Which boxes ``ndarray[N, 4]`` overlap the image ``[0, img_w] x [0, img_h]``.

    Example:
        >>> find_inside_bboxes(np.array([[1, 1, 5, 5], [12, 1, 15, 5]]), 10, 10)
        array([ True, False])
    """
    return (bboxes[:, 0] < img_w) & (bboxes[:, 2] > 0) & (bboxes[:, 1] < img_h) & (bboxes[:, 3] > 0)


def _check_scale(img_scale: Any, name: str) -> tuple[int, int]:
    check_arg(
        isinstance(img_scale, tuple) and len(img_scale) == 2,
        f"{name}: img_scale must be a tuple (h, w), got {img_scale!r}",
    )
    return img_scale


def _mix_results(results: Results, count: int, name: str) -> list[Results]:
    mixed = results.get("mix_results")
    if mixed is None:
        raise KeyError(
            f"{name}: results has no 'mix_results'; wrap the dataset in MultiImageMixDataset"
        )
    if len(mixed) != count:
        raise ValueError(f"{name} needs {count} extra image(s) in mix_results, got {len(mixed)}")
    return list(mixed)


@TRANSFORMS.register_module()
class Mosaic:
    """Tile 4 images around a random center on a ``2*img_scale`` canvas (YOLOX).

    The current sample goes top-left and the 3 samples of ``results['mix_results']`` top-right,
    bottom-left and bottom-right. Each is resized (aspect kept) to fit ``img_scale``; the parts
    crossing the canvas edge are cut. The boxes of all 4 follow (clipped when
    ``bbox_clip_border``); boxes entirely outside the canvas are dropped.

    Args:
        img_scale: ``(h, w)`` of one tile; the output is ``(2h, 2w)``.
        center_ratio_range: The center is drawn from this range times ``img_scale``.
        min_bbox_size: Boxes not larger than this (w and h) are dropped unless ``skip_filter``.
        bbox_clip_border: Clip boxes to the canvas.
        skip_filter: Skip the ``min_bbox_size`` filter.
        pad_val: Canvas fill value.
        prob: Probability of applying the mosaic.

    Example:
        >>> np.random.seed(0)
        >>> tile = lambda: {'img': np.zeros((20, 30, 3), np.uint8),
        ...     'gt_bboxes': np.array([[2, 2, 10, 10]], np.float32), 'gt_labels': np.array([0])}
        >>> r = tile()
        >>> r['mix_results'] = [tile(), tile(), tile()]
        >>> r = Mosaic(img_scale=(32, 32))(r)
        >>> r['img'].shape, len(r['gt_bboxes']) <= 4
        ((64, 64, 3), True)
    """

    def __init__(
        self,
        img_scale: tuple[int, int] = (640, 640),
        center_ratio_range: Sequence[float] = (0.5, 1.5),
        min_bbox_size: float = 0,
        bbox_clip_border: bool = True,
        skip_filter: bool = True,
        pad_val: float = 114,
        prob: float = 1.0,
    ) -> None:
        check_arg(0 <= prob <= 1.0, f"Mosaic: prob must be in [0, 1], got {prob}")
        self.img_scale = _check_scale(img_scale, "Mosaic")
        self.center_ratio_range = center_ratio_range
        self.min_bbox_size = min_bbox_size
        self.bbox_clip_border = bbox_clip_border
        self.skip_filter = skip_filter
        self.pad_val = pad_val
        self.prob = prob

    def get_indexes(self, dataset: Sequence[Any]) -> list[int]:
        """Indexes of the 3 other samples, drawn uniformly from ``dataset``."""
        return [int(np.random.randint(0, len(dataset))) for _ in range(3)]

    def __call__(self, results: Results) -> Results:
        if np.random.uniform(0, 1) > self.prob:
            return results
        return self._mosaic_transform(results)

    def _mosaic_transform(self, results: Results) -> Results:
        others = _mix_results(results, 3, "Mosaic")
        scale_h, scale_w = self.img_scale
        img = results["img"]
        canvas_shape = (int(scale_h * 2), int(scale_w * 2), *img.shape[2:])
        canvas = np.full(canvas_shape, self.pad_val, dtype=img.dtype)
        low, high = self.center_ratio_range
        center_x = int(np.random.uniform(low, high) * scale_w)
        center_y = int(np.random.uniform(low, high) * scale_h)
        all_bboxes, all_labels = [], []
        corners = ("top_left", "top_right", "bottom_left", "bottom_right")
        for corner, patch in zip(corners, [results, *others], strict=True):
            img_i = patch["img"]
            h_i, w_i = img_i.shape[:2]
            ratio = min(scale_h / h_i, scale_w / w_i)
            img_i = imresize(img_i, (int(w_i * ratio), int(h_i * ratio)))
            paste, crop = self._mosaic_combine(corner, (center_x, center_y), img_i.shape[1::-1])
            x1p, y1p, x2p, y2p = paste
            x1c, y1c, x2c, y2c = crop
            canvas[y1p:y2p, x1p:x2p] = img_i[y1c:y2c, x1c:x2c]
            bboxes = np.array(patch["gt_bboxes"], dtype=np.float32).reshape(-1, 4)
            if len(bboxes):
                bboxes[:, 0::2] = ratio * bboxes[:, 0::2] + (x1p - x1c)
                bboxes[:, 1::2] = ratio * bboxes[:, 1::2] + (y1p - y1c)
            all_bboxes.append(bboxes)
            all_labels.append(np.asarray(patch["gt_labels"]))
        bboxes = np.concatenate(all_bboxes, 0)
        labels = np.concatenate(all_labels, 0)
        if self.bbox_clip_border:
            bboxes[:, 0::2] = np.clip(bboxes[:, 0::2], 0, 2 * scale_w)
            bboxes[:, 1::2] = np.clip(bboxes[:, 1::2], 0, 2 * scale_h)
        if not self.skip_filter:
            big = (bboxes[:, 2] - bboxes[:, 0] > self.min_bbox_size) & (
                bboxes[:, 3] - bboxes[:, 1] > self.min_bbox_size
            )
            bboxes, labels = bboxes[big], labels[big]
        inside = find_inside_bboxes(bboxes, 2 * scale_h, 2 * scale_w)
        results["img"] = canvas
        results["img_shape"] = canvas.shape
        results["gt_bboxes"] = bboxes[inside]
        results["gt_labels"] = labels[inside]
        return results

    def _mosaic_combine(
        self, loc: str, center_xy: tuple[int, int], img_wh: tuple[int, int]
    ) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        """Paste box on the canvas and crop box in the tile, both ``(x1, y1, x2, y2)``."""
        cx, cy = center_xy
        w, h = img_wh
        max_x, max_y = self.img_scale[1] * 2, self.img_scale[0] * 2
        if loc == "top_left":
            x1, y1, x2, y2 = max(cx - w, 0), max(cy - h, 0), cx, cy
            crop = (w - (x2 - x1), h - (y2 - y1), w, h)
        elif loc == "top_right":
            x1, y1, x2, y2 = cx, max(cy - h, 0), min(cx + w, max_x), cy
            crop = (0, h - (y2 - y1), min(w, x2 - x1), h)
        elif loc == "bottom_left":
            x1, y1, x2, y2 = max(cx - w, 0), cy, cx, min(max_y, cy + h)
            crop = (w - (x2 - x1), 0, w, min(y2 - y1, h))
        elif loc == "bottom_right":
            x1, y1, x2, y2 = cx, cy, min(cx + w, max_x), min(max_y, cy + h)
            crop = (0, 0, min(w, x2 - x1), min(y2 - y1, h))
        else:
            raise ValueError(f"Mosaic: unknown corner {loc!r}")
        return (x1, y1, x2, y2), crop

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(img_scale={self.img_scale}, "
            f"center_ratio_range={self.center_ratio_range}, pad_val={self.pad_val}, "
            f"min_bbox_size={self.min_bbox_size}, skip_filter={self.skip_filter}, "
            f"prob={self.prob})"
        )


def _box_candidates(
    before: np.ndarray,
    after: np.ndarray,
    min_bbox_size: float,
    min_area_ratio: float,
    max_aspect_ratio: float,
) -> np.ndarray:
    """Boxes (``ndarray[N, 4]``) still big, not squashed and not too thin after a warp."""
    w1, h1 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w2, h2 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = np.maximum(w2 / (h2 + 1e-16), h2 / (w2 + 1e-16))
    return (
        (w2 > min_bbox_size)
        & (h2 > min_bbox_size)
        & (w2 * h2 / (w1 * h1 + 1e-16) > min_area_ratio)
        & (aspect < max_aspect_ratio)
    )


@TRANSFORMS.register_module()
class MixUp:
    """Blend the sample 50/50 with a resized, jittered, maybe flipped second sample (YOLOX).

    The second image (``results['mix_results'][0]``) is resized to fit ``img_scale`` and
    pasted top-left on a ``pad_val`` canvas of that size, scaled by a factor drawn from
    ``ratio_range``, flipped horizontally when ``uniform(0, 1) > flip_ratio`` (v2's rule),
    randomly cropped to the first image's size, and averaged with it; its boxes are appended.
    A second sample without boxes leaves the input unchanged.

    Args:
        img_scale: ``(h, w)`` canvas for the second image (kept as ``dynamic_scale``).
        ratio_range: Range of the scale jitter.
        flip_ratio: Threshold of the flip draw (see above).
        pad_val: Canvas fill value.
        max_iters: Tries of :meth:`get_indexes` to find a sample with boxes.
        min_bbox_size: Filter (unless ``skip_filter``): minimum box width and height.
        min_area_ratio: Filter: minimum area kept after the crop.
        max_aspect_ratio: Filter: maximum aspect ratio.
        bbox_clip_border: Clip boxes to the image.
        skip_filter: Skip the three filters.

    Example:
        >>> np.random.seed(0)
        >>> t = MixUp(img_scale=(8, 8), ratio_range=(1, 1))
        >>> r = {'img': np.full((8, 8, 3), 100, np.uint8), 'gt_bboxes': np.zeros((0, 4),
        ...      np.float32), 'gt_labels': np.zeros(0, np.int64)}
        >>> r['mix_results'] = [{'img': np.full((8, 8, 3), 200, np.uint8),
        ...     'gt_bboxes': np.array([[0, 0, 4, 4]], np.float32), 'gt_labels': np.array([2])}]
        >>> out = t(r)
        >>> int(out['img'][0, 0, 0]), out['gt_labels'].tolist()
        (150, [2])
    """

    def __init__(
        self,
        img_scale: tuple[int, int] = (640, 640),
        ratio_range: Sequence[float] = (0.5, 1.5),
        flip_ratio: float = 0.5,
        pad_val: float = 114,
        max_iters: int = 15,
        min_bbox_size: float = 5,
        min_area_ratio: float = 0.2,
        max_aspect_ratio: float = 20,
        bbox_clip_border: bool = True,
        skip_filter: bool = True,
    ) -> None:
        self.dynamic_scale = _check_scale(img_scale, "MixUp")
        self.ratio_range = ratio_range
        self.flip_ratio = flip_ratio
        self.pad_val = pad_val
        self.max_iters = max_iters
        self.min_bbox_size = min_bbox_size
        self.min_area_ratio = min_area_ratio
        self.max_aspect_ratio = max_aspect_ratio
        self.bbox_clip_border = bbox_clip_border
        self.skip_filter = skip_filter

    def get_indexes(self, dataset: Any) -> int:
        """A random index whose annotation has boxes (after at most ``max_iters`` tries)."""
        index = 0
        for _ in range(self.max_iters):
            index = int(np.random.randint(0, len(dataset)))
            if len(dataset.get_ann_info(index)["bboxes"]) != 0:
                break
        return index

    def __call__(self, results: Results) -> Results:
        (other,) = _mix_results(results, 1, "MixUp")
        other_bboxes = np.array(other["gt_bboxes"], dtype=np.float32).reshape(-1, 4)
        if other_bboxes.shape[0] == 0:
            return results
        other_img = other["img"]
        jit_factor = np.random.uniform(self.ratio_range[0], self.ratio_range[1])
        is_flip = np.random.uniform(0, 1) > self.flip_ratio
        canvas_h, canvas_w = self.dynamic_scale
        canvas_shape = (canvas_h, canvas_w, *other_img.shape[2:])
        # v2's canvas: float64 for a float pad_val (YOLOX's 114.0), truncated back to uint8 below
        out_img = np.ones(canvas_shape, dtype=other_img.dtype) * self.pad_val
        # 1. resize keeping the aspect ratio, 2. paste top-left, 3. jitter the scale.
        scale_ratio = min(canvas_h / other_img.shape[0], canvas_w / other_img.shape[1])
        other_img = imresize(
            other_img,
            (int(other_img.shape[1] * scale_ratio), int(other_img.shape[0] * scale_ratio)),
        )
        out_img[: other_img.shape[0], : other_img.shape[1]] = other_img
        scale_ratio *= jit_factor
        out_img = imresize(
            out_img, (int(out_img.shape[1] * jit_factor), int(out_img.shape[0] * jit_factor))
        )
        # 4. flip, 5. random crop to the size of the first image.
        if is_flip:
            out_img = out_img[:, ::-1]
        ori_img = results["img"]
        origin_h, origin_w = out_img.shape[:2]
        target_h, target_w = ori_img.shape[:2]
        padded = np.zeros(
            (max(origin_h, target_h), max(origin_w, target_w), *ori_img.shape[2:]), np.uint8
        )
        padded[:origin_h, :origin_w] = out_img
        x_offset = y_offset = 0
        if padded.shape[0] > target_h:
            y_offset = int(np.random.randint(0, padded.shape[0] - target_h))
        if padded.shape[1] > target_w:
            x_offset = int(np.random.randint(0, padded.shape[1] - target_w))
        cropped = padded[y_offset : y_offset + target_h, x_offset : x_offset + target_w]
        # 6. boxes follow.
        other_bboxes *= np.float32(scale_ratio)
        if self.bbox_clip_border:
            other_bboxes[:, 0::2] = np.clip(other_bboxes[:, 0::2], 0, origin_w)
            other_bboxes[:, 1::2] = np.clip(other_bboxes[:, 1::2], 0, origin_h)
        if is_flip:
            other_bboxes[:, 0::2] = origin_w - other_bboxes[:, 0::2][:, ::-1]
        moved = other_bboxes.copy()
        moved[:, 0::2] -= x_offset
        moved[:, 1::2] -= y_offset
        if self.bbox_clip_border:
            moved[:, 0::2] = np.clip(moved[:, 0::2], 0, target_w)
            moved[:, 1::2] = np.clip(moved[:, 1::2], 0, target_h)
        # 7. blend and merge the annotations.
        mixed = 0.5 * ori_img.astype(np.float32) + 0.5 * cropped.astype(np.float32)
        other_labels = np.asarray(other["gt_labels"])
        if not self.skip_filter:
            keep = _box_candidates(
                other_bboxes, moved, self.min_bbox_size, self.min_area_ratio, self.max_aspect_ratio
            )
            other_labels, moved = other_labels[keep], moved[keep]
        bboxes = np.concatenate(
            (np.asarray(results["gt_bboxes"], np.float32).reshape(-1, 4), moved), 0
        )
        labels = np.concatenate((np.asarray(results["gt_labels"]), other_labels), 0)
        inside = find_inside_bboxes(bboxes, target_h, target_w)
        results["img"] = mixed.astype(np.uint8)
        results["img_shape"] = mixed.shape
        results["gt_bboxes"] = bboxes[inside]
        results["gt_labels"] = labels[inside]
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dynamic_scale={self.dynamic_scale}, "
            f"ratio_range={self.ratio_range}, flip_ratio={self.flip_ratio}, "
            f"pad_val={self.pad_val}, max_iters={self.max_iters}, "
            f"min_bbox_size={self.min_bbox_size}, min_area_ratio={self.min_area_ratio}, "
            f"max_aspect_ratio={self.max_aspect_ratio}, skip_filter={self.skip_filter})"
        )


def _matrix(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


@TRANSFORMS.register_module()
class RandomAffine:
    """Random rotation, scaling, shear and translation in one perspective warp (YOLOX).

    The warp is ``translate @ shear @ rotate @ scale``; boxes become the bounding boxes of their
    warped corners. Output size is the input size plus ``2 * border`` (``border=(-h/2, -w/2)``
    after ``Mosaic`` brings the canvas back to ``img_scale``).

    Args:
        max_rotate_degree: Rotation drawn from ``[-max, max]`` degrees.
        max_translate_ratio: Translation drawn from ``[-max, max]`` times the output size.
        scaling_ratio_range: Scale drawn from this range.
        max_shear_degree: Shear angles (x and y) drawn from ``[-max, max]`` degrees.
        border: ``(h, w)`` added to each side of the output.
        border_val: Fill value of uncovered pixels.
        min_bbox_size: Filter (unless ``skip_filter``): minimum box width and height.
        min_area_ratio: Filter: minimum ratio of warped to scaled area.
        max_aspect_ratio: Filter: maximum aspect ratio.
        bbox_clip_border: Clip boxes to the output.
        skip_filter: Skip the three filters.

    Example:
        >>> np.random.seed(0)
        >>> r = RandomAffine()({'img': np.zeros((32, 48, 3), np.uint8),
        ...     'bbox_fields': ['gt_bboxes'], 'gt_bboxes': np.array([[4, 4, 20, 20]], np.float32),
        ...     'gt_labels': np.array([1])})
        >>> r['img'].shape, r['gt_bboxes'].dtype
        ((32, 48, 3), dtype('float32'))
    """

    def __init__(
        self,
        max_rotate_degree: float = 10.0,
        max_translate_ratio: float = 0.1,
        scaling_ratio_range: Sequence[float] = (0.5, 1.5),
        max_shear_degree: float = 2.0,
        border: Sequence[int] = (0, 0),
        border_val: Sequence[float] = (114, 114, 114),
        min_bbox_size: float = 2,
        min_area_ratio: float = 0.2,
        max_aspect_ratio: float = 20,
        bbox_clip_border: bool = True,
        skip_filter: bool = True,
    ) -> None:
        check_arg(
            0 <= max_translate_ratio <= 1,
            f"RandomAffine: max_translate_ratio must be in [0, 1], got {max_translate_ratio}",
        )
        check_arg(
            0 < scaling_ratio_range[0] <= scaling_ratio_range[1],
            f"RandomAffine: scaling_ratio_range must be 0 < min <= max, "
            f"got {scaling_ratio_range!r}",
        )
        self.max_rotate_degree = max_rotate_degree
        self.max_translate_ratio = max_translate_ratio
        self.scaling_ratio_range = scaling_ratio_range
        self.max_shear_degree = max_shear_degree
        self.border = border
        self.border_val = border_val
        self.min_bbox_size = min_bbox_size
        self.min_area_ratio = min_area_ratio
        self.max_aspect_ratio = max_aspect_ratio
        self.bbox_clip_border = bbox_clip_border
        self.skip_filter = skip_filter

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        height = img.shape[0] + self.border[0] * 2
        width = img.shape[1] + self.border[1] * 2
        rad = math.radians(np.random.uniform(-self.max_rotate_degree, self.max_rotate_degree))
        cos, sin = math.cos(rad), math.sin(rad)
        rotation = _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
        scale = np.random.uniform(self.scaling_ratio_range[0], self.scaling_ratio_range[1])
        scaling = _matrix([[scale, 0, 0], [0, scale, 0], [0, 0, 1]])
        shear_x = math.radians(np.random.uniform(-self.max_shear_degree, self.max_shear_degree))
        shear_y = math.radians(np.random.uniform(-self.max_shear_degree, self.max_shear_degree))
        shear = _matrix([[1, math.tan(shear_x), 0], [math.tan(shear_y), 1, 0], [0, 0, 1]])
        ratio = self.max_translate_ratio
        trans_x = np.random.uniform(-ratio, ratio) * width
        trans_y = np.random.uniform(-ratio, ratio) * height
        translate = _matrix([[1, 0, trans_x], [0, 1, trans_y], [0, 0, 1]])
        warp = translate @ shear @ rotation @ scaling

        img = cv2.warpPerspective(
            img, warp, dsize=(width, height), borderValue=tuple(float(v) for v in self.border_val)
        )
        results["img"] = img
        results["img_shape"] = img.shape
        for key in results.get("bbox_fields", []):
            bboxes = np.array(results[key], dtype=np.float32).reshape(-1, 4)
            num = len(bboxes)
            if not num:
                continue
            if "gt_masks" in results:
                raise NotImplementedError("RandomAffine only supports boxes, not gt_masks")
            xs = bboxes[:, [0, 0, 2, 2]].reshape(num * 4)
            ys = bboxes[:, [1, 3, 3, 1]].reshape(num * 4)
            points = warp @ np.vstack([xs, ys, np.ones_like(xs)])
            points = points[:2] / points[2]
            xs, ys = points[0].reshape(num, 4), points[1].reshape(num, 4)
            warped = np.vstack((xs.min(1), ys.min(1), xs.max(1), ys.max(1))).T.astype(np.float32)
            if self.bbox_clip_border:
                warped[:, [0, 2]] = warped[:, [0, 2]].clip(0, width)
                warped[:, [1, 3]] = warped[:, [1, 3]].clip(0, height)
            valid = find_inside_bboxes(warped, height, width)
            if not self.skip_filter:
                valid &= _box_candidates(
                    bboxes * scale,
                    warped,
                    self.min_bbox_size,
                    self.min_area_ratio,
                    self.max_aspect_ratio,
                )
            results[key] = warped[valid]
            if key == "gt_bboxes" and "gt_labels" in results:
                results["gt_labels"] = results["gt_labels"][valid]
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_rotate_degree={self.max_rotate_degree}, "
            f"max_translate_ratio={self.max_translate_ratio}, "
            f"scaling_ratio={self.scaling_ratio_range}, "
            f"max_shear_degree={self.max_shear_degree}, border={self.border}, "
            f"border_val={self.border_val}, min_bbox_size={self.min_bbox_size}, "
            f"min_area_ratio={self.min_area_ratio}, max_aspect_ratio={self.max_aspect_ratio}, "
            f"skip_filter={self.skip_filter})"
        )


def _masks_or_boxes(results: Results, bboxes: np.ndarray) -> BitmapMasks:
    """The sample's ``gt_masks``, or (v2's box-only CopyPaste) one mask filling each box."""
    if results.get("gt_masks") is not None:
        return results["gt_masks"]
    h, w = results["img"].shape[:2]
    masks = np.zeros((len(bboxes), h, w), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, bboxes, strict=True):
        mask[int(y1) : int(y2), int(x1) : int(x2)] = 1
    return BitmapMasks(masks, h, w)


@TRANSFORMS.register_module()
class CopyPaste:
    """Paste objects of a second sample onto this one (Simple Copy-Paste), bitmap masks only.

    Both samples must already have the same size. A random subset of the second sample's
    objects (all of them when ``selected=False``) is pasted; the first sample's masks lose the
    covered pixels and its boxes are recomputed from them. One of its objects survives when
    every side of its box moved by at most ``bbox_occluded_thr`` pixels or more than
    ``mask_occluded_thr`` of its mask pixels are still visible.

    Without ``gt_masks`` in either sample (v2.28's box-only mode) each box stands for a mask
    filling it (corners truncated to whole pixels, as v2), and the output has no ``gt_masks``.
    v2 stays in box-only mode for every later call once it met one sample without masks; here
    each call decides from its own samples.

    Args:
        max_num_pasted: Upper bound on the number of pasted objects.
        bbox_occluded_thr: Box change (pixels) that still counts as not occluded.
        mask_occluded_thr: Mask pixels that still count as visible.
        selected: Paste a random subset (``True``) or every object.
    """

    def __init__(
        self,
        max_num_pasted: int = 100,
        bbox_occluded_thr: int = 10,
        mask_occluded_thr: int = 300,
        selected: bool = True,
    ) -> None:
        self.max_num_pasted = max_num_pasted
        self.bbox_occluded_thr = bbox_occluded_thr
        self.mask_occluded_thr = mask_occluded_thr
        self.selected = selected

    def get_indexes(self, dataset: Sequence[Any]) -> int:
        """A random index of ``dataset``."""
        return int(np.random.randint(0, len(dataset)))

    def __call__(self, results: Results) -> Results:
        (src,) = _mix_results(results, 1, "CopyPaste")
        src_bboxes = np.array(src["gt_bboxes"], dtype=np.float32).reshape(-1, 4)
        src_labels = np.asarray(src["gt_labels"])
        by_box = results.get("gt_masks") is None or src.get("gt_masks") is None
        src_masks = _masks_or_boxes(src, src_bboxes)
        if self.selected:
            limit = min(src_bboxes.shape[0] + 1, self.max_num_pasted)
            num = np.random.randint(0, limit)
            inds = np.random.choice(src_bboxes.shape[0], size=num, replace=False)
            src_bboxes, src_labels, src_masks = src_bboxes[inds], src_labels[inds], src_masks[inds]
        if len(src_bboxes) == 0:
            if by_box:
                results.pop("gt_masks", None)
            return results

        dst_img = results["img"]
        dst_bboxes = np.array(results["gt_bboxes"], dtype=np.float32).reshape(-1, 4)
        dst_masks = np.array(_masks_or_boxes(results, dst_bboxes).masks)
        check_arg(
            dst_masks.shape[-2:] == src_masks.masks.shape[-2:] == dst_img.shape[:2],
            f"CopyPaste: image and mask sizes differ: {dst_img.shape[:2]}, "
            f"{dst_masks.shape[-2:]}, {src_masks.masks.shape[-2:]}",
        )
        covered = np.any(src_masks.masks, axis=0)
        dst_masks[:, covered] = 0
        h, w = dst_img.shape[:2]
        updated = BitmapMasks(dst_masks, h, w)
        updated_bboxes = np.asarray(updated.get_bboxes(), dtype=np.float32).reshape(-1, 4)
        box_kept = np.all(np.abs(updated_bboxes - dst_bboxes) <= self.bbox_occluded_thr, axis=-1)
        mask_kept = dst_masks.sum(axis=(1, 2)) > self.mask_occluded_thr
        valid = box_kept | mask_kept

        img = np.array(dst_img)
        img[covered] = np.asarray(src["img"])[covered]
        results["img"] = img
        results["gt_bboxes"] = np.concatenate([updated_bboxes[valid], src_bboxes])
        results["gt_labels"] = np.concatenate([np.asarray(results["gt_labels"])[valid], src_labels])
        if by_box:
            results.pop("gt_masks", None)
            return results
        masks = np.concatenate([dst_masks[valid], np.asarray(src_masks.masks)])
        results["gt_masks"] = BitmapMasks(masks, h, w)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_num_pasted={self.max_num_pasted}, "
            f"bbox_occluded_thr={self.bbox_occluded_thr}, "
            f"mask_occluded_thr={self.mask_occluded_thr}, selected={self.selected})"
        )
