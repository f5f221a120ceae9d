"""Geometric transforms: ``Resize``, ``RandomFlip``, ``Pad`` and ``SegRescale``.

Each one moves every entry named in ``img_fields``, ``bbox_fields``, ``mask_fields`` and
``seg_fields`` together, so boxes, masks and maps stay aligned with the image. Randomness comes
from ``np.random`` exactly as in MMDetection v2, so seeding ``np.random`` reproduces a run.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detforge.datasets.transforms._utils import check_arg
from detforge.registry import TRANSFORMS
from detforge.utils.image import (
    imflip,
    impad,
    impad_to_multiple,
    imrescale,
    imresize,
    rescale_size,
)

__all__ = ["Pad", "RandomFlip", "Resize", "SegRescale"]

_Scale = tuple[int, int]
_DIRECTIONS = ("horizontal", "vertical", "diagonal")
_PILLOW_FILTERS = {
    "nearest": 0,
    "lanczos": 1,
    "bilinear": 2,
    "bicubic": 3,
    "box": 4,
    "hamming": 5,
}


def _pillow_resize(img: np.ndarray, size: _Scale, interpolation: str) -> np.ndarray:
    """Resize ``img`` to ``size = (w, h)`` with Pillow (v2's ``backend='pillow'``)."""
    from PIL import Image

    if img.dtype != np.uint8:
        raise TypeError(f"Resize(backend='pillow') needs a uint8 image, got {img.dtype}")
    if interpolation not in _PILLOW_FILTERS:
        raise ValueError(
            f"Resize(backend='pillow'): unknown interpolation {interpolation!r}; expected one "
            f"of {sorted(_PILLOW_FILTERS)}"
        )
    resized = Image.fromarray(img).resize(
        (int(size[0]), int(size[1])),
        Image.Resampling(_PILLOW_FILTERS[interpolation]),
    )
    return np.array(resized)


def _resize_to(
    img: np.ndarray, scale: Any, keep_ratio: bool, interpolation: str, backend: str
) -> np.ndarray:
    """``imrescale`` (keep_ratio) or ``imresize`` to ``scale``, with either backend."""
    if backend == "cv2":
        if keep_ratio:
            return imrescale(img, scale, interpolation=interpolation)
        return imresize(img, scale, interpolation=interpolation)
    h, w = img.shape[:2]
    size = rescale_size((w, h), scale) if keep_ratio else scale
    return _pillow_resize(img, size, interpolation)


@TRANSFORMS.register_module()
class Resize:
    """Resize the image, then boxes, masks and segmentation maps by the same factors.

    The target ``results['scale']`` is, in order of precedence: a ``scale`` already in
    ``results``; ``results['scale_factor']`` (a float set by :class:`MultiScaleFlipAug`)
    times the image size; or one drawn from ``img_scale``:

    - ``ratio_range`` given: the single ``img_scale`` times a ratio drawn uniformly from it;
    - several scales, ``multiscale_mode='range'``: long and short edges drawn uniformly
      between those of the two given scales;
    - several scales, ``multiscale_mode='value'``: one of them picked uniformly.

    With ``keep_ratio`` the image is rescaled so its long side fits ``max(scale)`` and its
    short side ``min(scale)`` (any orientation); otherwise it is resized to exactly
    ``scale = (w, h)``. Sets ``img_shape``, ``pad_shape``, ``scale_factor`` (float32
    ``[w_scale, h_scale, w_scale, h_scale]``), ``keep_ratio``, ``scale`` and ``scale_idx``.

    Args:
        img_scale: One ``(w, h)`` tuple or a list of them; None when the scale comes from
            ``results`` (test-time augmentation).
        multiscale_mode: ``'range'`` or ``'value'``.
        ratio_range: ``(min_ratio, max_ratio)`` applied to a single ``img_scale``.
        keep_ratio: Keep the aspect ratio.
        bbox_clip_border: Clip boxes to the resized image.
        backend: ``'cv2'`` or ``'pillow'``.
        interpolation: Image interpolation (masks and maps always use nearest).
        override: Ignore a ``scale``/``scale_factor`` already present and draw anew (lets a
            pipeline resize twice, as DETR's does).

    Example:
        >>> Resize(img_scale=(1333, 800), keep_ratio=True)
        Resize(img_scale=[(1333, 800)], multiscale_mode=range, ratio_range=None, \
keep_ratio=True, bbox_clip_border=True)
        >>> out = Resize(img_scale=(20, 10), keep_ratio=False)({'img': np.zeros((5, 5, 3))})
        >>> out['img_shape'], out['scale_factor'].tolist()
        ((10, 20, 3), [4.0, 2.0, 4.0, 2.0])
    """

    def __init__(
        self,
        img_scale: _Scale | list[_Scale] | None = None,
        multiscale_mode: str = "range",
        ratio_range: tuple[float, float] | None = None,
        keep_ratio: bool = True,
        bbox_clip_border: bool = True,
        backend: str = "cv2",
        interpolation: str = "bilinear",
        override: bool = False,
    ) -> None:
        self.img_scale: list[_Scale] | None
        if img_scale is None:
            self.img_scale = None
        else:
            self.img_scale = img_scale if isinstance(img_scale, list) else [img_scale]
            check_arg(
                all(isinstance(s, tuple) for s in self.img_scale),
                f"Resize: img_scale must be a tuple or a list of tuples, got {img_scale!r}",
            )
        if ratio_range is not None:
            check_arg(
                self.img_scale is not None and len(self.img_scale) == 1,
                "Resize: ratio_range needs exactly one img_scale",
            )
        else:
            check_arg(
                multiscale_mode in ("value", "range"),
                f"Resize: multiscale_mode must be 'value' or 'range', got {multiscale_mode!r}",
            )
        if backend not in ("cv2", "pillow"):
            raise ValueError(f"Resize: backend must be 'cv2' or 'pillow', got {backend!r}")
        self.multiscale_mode = multiscale_mode
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio
        self.bbox_clip_border = bbox_clip_border
        self.backend = backend
        self.interpolation = interpolation
        self.override = override

    @staticmethod
    def random_select(img_scales: list[_Scale]) -> tuple[_Scale, int]:
        """Pick one of ``img_scales`` uniformly; returns ``(scale, index)``."""
        check_arg(
            all(isinstance(s, tuple) for s in img_scales),
            f"Resize: img_scale must be a list of tuples, got {img_scales!r}",
        )
        scale_idx = int(np.random.randint(len(img_scales)))
        return img_scales[scale_idx], scale_idx

    @staticmethod
    def random_sample(img_scales: list[_Scale]) -> tuple[_Scale, None]:
        """Draw ``(long, short)`` edges uniformly between those of two scales."""
        check_arg(
            all(isinstance(s, tuple) for s in img_scales) and len(img_scales) == 2,
            f"Resize: multiscale_mode='range' needs exactly two scales, got {img_scales!r}",
        )
        longs = [max(s) for s in img_scales]
        shorts = [min(s) for s in img_scales]
        long_edge = int(np.random.randint(min(longs), max(longs) + 1))
        short_edge = int(np.random.randint(min(shorts), max(shorts) + 1))
        return (long_edge, short_edge), None

    @staticmethod
    def random_sample_ratio(
        img_scale: _Scale, ratio_range: tuple[float, float]
    ) -> tuple[_Scale, None]:
        """Multiply ``img_scale`` by a ratio drawn uniformly from ``ratio_range``."""
        check_arg(
            isinstance(img_scale, tuple) and len(img_scale) == 2,
            f"Resize: ratio_range needs one (w, h) img_scale, got {img_scale!r}",
        )
        min_ratio, max_ratio = ratio_range
        check_arg(min_ratio <= max_ratio, f"Resize: bad ratio_range {ratio_range!r}")
        ratio = np.random.random_sample() * (max_ratio - min_ratio) + min_ratio
        return (int(img_scale[0] * ratio), int(img_scale[1] * ratio)), None

    def _random_scale(self, results: dict[str, Any]) -> None:
        if self.img_scale is None:
            raise ValueError(
                "Resize(img_scale=None) needs results['scale'] or results['scale_factor'] "
                "(put it inside MultiScaleFlipAug, or give img_scale)"
            )
        scale: _Scale
        scale_idx: int | None
        if self.ratio_range is not None:
            scale, scale_idx = self.random_sample_ratio(self.img_scale[0], self.ratio_range)
        elif len(self.img_scale) == 1:
            scale, scale_idx = self.img_scale[0], 0
        elif self.multiscale_mode == "range":
            scale, scale_idx = self.random_sample(self.img_scale)
        else:
            scale, scale_idx = self.random_select(self.img_scale)
        results["scale"] = scale
        results["scale_idx"] = scale_idx

    def _resize_img(self, results: dict[str, Any]) -> None:
        for key in results.get("img_fields", ["img"]):
            src = results[key]
            img = _resize_to(
                src, results["scale"], self.keep_ratio, self.interpolation, self.backend
            )
            # v2 measures the factors on the result, so rounding is reflected exactly
            w_scale = img.shape[1] / src.shape[1]
            h_scale = img.shape[0] / src.shape[0]
            results[key] = img
            results["img_shape"] = img.shape
            results["pad_shape"] = img.shape
            results["scale_factor"] = np.array(
                [w_scale, h_scale, w_scale, h_scale], dtype=np.float32
            )
            results["keep_ratio"] = self.keep_ratio

    def _resize_bboxes(self, results: dict[str, Any]) -> None:
        for key in results.get("bbox_fields", []):
            bboxes = results[key] * results["scale_factor"]
            if self.bbox_clip_border:
                h, w = results["img_shape"][:2]
                bboxes[:, 0::2] = np.clip(bboxes[:, 0::2], 0, w)
                bboxes[:, 1::2] = np.clip(bboxes[:, 1::2], 0, h)
            results[key] = bboxes

    def _resize_masks(self, results: dict[str, Any]) -> None:
        for key in results.get("mask_fields", []):
            if results[key] is None:
                continue
            if self.keep_ratio:
                results[key] = results[key].rescale(results["scale"])
            else:
                results[key] = results[key].resize(results["img_shape"][:2])

    def _resize_seg(self, results: dict[str, Any]) -> None:
        for key in results.get("seg_fields", []):
            results[key] = _resize_to(
                results[key], results["scale"], self.keep_ratio, "nearest", self.backend
            )

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "scale" not in results:
            if "scale_factor" in results:
                factor = results["scale_factor"]
                check_arg(
                    isinstance(factor, float),
                    "Resize: a preset results['scale_factor'] must be a float, got "
                    f"{factor!r} (was the image resized twice? see override=True)",
                )
                h, w = results["img"].shape[:2]
                results["scale"] = (int(w * factor), int(h * factor))
            else:
                self._random_scale(results)
        elif not self.override:
            check_arg("scale_factor" not in results, "scale and scale_factor cannot be both set.")
        else:
            results.pop("scale")
            results.pop("scale_factor", None)
            self._random_scale(results)
        self._resize_img(results)
        self._resize_bboxes(results)
        self._resize_masks(results)
        self._resize_seg(results)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(img_scale={self.img_scale}, "
            f"multiscale_mode={self.multiscale_mode}, ratio_range={self.ratio_range}, "
            f"keep_ratio={self.keep_ratio}, bbox_clip_border={self.bbox_clip_border})"
        )


def _flip_boxes(bboxes: np.ndarray, img_shape: Sequence[int], direction: str) -> np.ndarray:
    """Mirror ``ndarray[..., 4k]`` boxes in an image of ``img_shape`` (``x' = w - x``)."""
    check_arg(bboxes.shape[-1] % 4 == 0, f"boxes need a multiple of 4 columns, got {bboxes.shape}")
    h, w = img_shape[0], img_shape[1]
    flipped = bboxes.copy()
    if direction in ("horizontal", "diagonal"):
        flipped[..., 0::4] = w - bboxes[..., 2::4]
        flipped[..., 2::4] = w - bboxes[..., 0::4]
    if direction in ("vertical", "diagonal"):
        flipped[..., 1::4] = h - bboxes[..., 3::4]
        flipped[..., 3::4] = h - bboxes[..., 1::4]
    if direction not in _DIRECTIONS:
        raise ValueError(f"Invalid flipping direction '{direction}'")
    return flipped


@TRANSFORMS.register_module()
class RandomFlip:
    """Flip the image, boxes, masks and maps; sets ``flip`` and ``flip_direction``.

    When ``results`` already holds ``flip`` (as :class:`MultiScaleFlipAug` sets it) that
    decision is used. Otherwise a direction is drawn with ``np.random.choice``:

    - ``flip_ratio`` float, ``direction`` str: flip that way with probability ``flip_ratio``;
    - ``flip_ratio`` float, ``direction`` list: each direction with ``flip_ratio / len``;
    - both lists (same length): ``direction[i]`` with probability ``flip_ratio[i]``.

    Args:
        flip_ratio: Probability (or probabilities) of flipping; None never flips unless
            ``results['flip']`` says so.
        direction: ``'horizontal'``, ``'vertical'``, ``'diagonal'`` or a list of them.

    Example:
        >>> flip = RandomFlip(flip_ratio=1.0)
        >>> out = flip({'img': np.array([[[1], [2]]]), 'img_shape': (1, 2, 1),
        ...             'bbox_fields': ['gt_bboxes'],
        ...             'gt_bboxes': np.array([[0, 0, 1, 1]], np.float32)})
        >>> out['img'].ravel().tolist(), out['gt_bboxes'].tolist()
        ([2, 1], [[1.0, 0.0, 2.0, 1.0]])
        >>> flip
        RandomFlip(flip_ratio=1.0)
    """

    def __init__(
        self,
        flip_ratio: float | list[float] | None = None,
        direction: str | list[str] = "horizontal",
    ) -> None:
        if isinstance(flip_ratio, list):
            check_arg(
                all(isinstance(r, float) for r in flip_ratio),
                f"RandomFlip: flip_ratio list must hold floats, got {flip_ratio!r}",
            )
            check_arg(
                0 <= sum(flip_ratio) <= 1,
                f"RandomFlip: flip_ratio must sum to [0, 1], got {flip_ratio!r}",
            )
        elif isinstance(flip_ratio, float | int) and not isinstance(flip_ratio, bool):
            check_arg(
                0 <= flip_ratio <= 1, f"RandomFlip: flip_ratio must be in [0, 1], got {flip_ratio}"
            )
        elif flip_ratio is not None:
            raise ValueError("flip_ratios must be None, float, or list of float")
        self.flip_ratio = flip_ratio
        if isinstance(direction, str):
            check_arg(direction in _DIRECTIONS, f"RandomFlip: unknown direction {direction!r}")
        elif isinstance(direction, list):
            check_arg(
                all(isinstance(d, str) for d in direction),
                f"RandomFlip: directions must be strings, got {direction!r}",
            )
            check_arg(
                set(direction) <= set(_DIRECTIONS), f"RandomFlip: bad directions {direction!r}"
            )
        else:
            raise ValueError("direction must be either str or list of str")
        self.direction = direction
        if isinstance(flip_ratio, list):
            check_arg(
                isinstance(direction, list) and len(flip_ratio) == len(direction),
                "RandomFlip: a list flip_ratio needs a direction list of the same length",
            )

    def bbox_flip(self, bboxes: np.ndarray, img_shape: Sequence[int], direction: str) -> np.ndarray:
        """Flip ``ndarray[..., 4k]`` boxes inside an image of shape ``img_shape``."""
        return _flip_boxes(bboxes, img_shape, direction)

    def _draw_direction(self) -> str | None:
        directions: list[str | None] = (
            [*self.direction, None] if isinstance(self.direction, list) else [self.direction, None]
        )
        if isinstance(self.flip_ratio, list):
            probs = [*self.flip_ratio, 1 - sum(self.flip_ratio)]
        else:
            ratio = 0.0 if self.flip_ratio is None else float(self.flip_ratio)
            single = ratio / (len(directions) - 1)
            probs = [single] * (len(directions) - 1) + [1 - ratio]
        choice = directions[int(np.random.choice(len(directions), p=probs))]
        return choice

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "flip" not in results:
            if self.flip_ratio is None:
                raise ValueError(
                    "RandomFlip(flip_ratio=None) needs results['flip'] (set by "
                    "MultiScaleFlipAug); give flip_ratio to flip at random"
                )
            direction = self._draw_direction()
            results["flip"] = direction is not None
            results.setdefault("flip_direction", direction)
        elif "flip_direction" not in results:
            results["flip_direction"] = self.direction if results["flip"] else None
        if not results["flip"]:
            return results
        direction = results["flip_direction"]
        if direction not in _DIRECTIONS:
            raise ValueError(f"RandomFlip: invalid results['flip_direction'] {direction!r}")
        for key in results.get("img_fields", ["img"]):
            results[key] = imflip(results[key], direction=direction)
        for key in results.get("bbox_fields", []):
            results[key] = _flip_boxes(results[key], results["img_shape"], direction)
        for key in results.get("mask_fields", []):
            results[key] = results[key].flip(direction)
        for key in results.get("seg_fields", []):
            results[key] = imflip(results[key], direction=direction)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(flip_ratio={self.flip_ratio})"


@TRANSFORMS.register_module()
class Pad:
    """Pad the image (and masks, maps) at the bottom and right.

    Exactly one mode: a fixed ``size = (h, w)``, the next multiple of ``size_divisor``, or
    a square of the longer side (``pad_to_square``). Sets ``pad_shape``, ``pad_fixed_size``
    and ``pad_size_divisor``.

    Args:
        size: Fixed ``(h, w)``.
        size_divisor: Pad both sides to a multiple of this.
        pad_to_square: Pad to ``(max(h, w), max(h, w))``.
        pad_val: Fill values ``dict(img=..., masks=..., seg=...)``. A bare number is the old
            form: it is used for image and masks (seg keeps 255), with a DeprecationWarning.

    Example:
        >>> out = Pad(size_divisor=32)({'img': np.zeros((30, 33, 3), np.uint8)})
        >>> out['pad_shape']
        (32, 64, 3)
        >>> Pad(size_divisor=32)
        Pad(size=None, size_divisor=32, pad_to_square=False, pad_val={'img': 0, 'masks': 0, \
'seg': 255})
    """

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        size_divisor: int | None = None,
        pad_to_square: bool = False,
        pad_val: Mapping[str, Any] | float | None = None,
    ) -> None:
        if pad_val is None:
            pad_val = dict(img=0, masks=0, seg=255)
        elif isinstance(pad_val, float | int):
            warnings.warn(
                "pad_val of float type is deprecated now, "
                f"please use pad_val=dict(img={pad_val}, masks={pad_val}, seg=255) instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            pad_val = dict(img=pad_val, masks=pad_val, seg=255)
        check_arg(isinstance(pad_val, Mapping), f"Pad: pad_val must be a dict, got {pad_val!r}")
        self.size = size
        self.size_divisor = size_divisor
        self.pad_val = dict(pad_val)
        self.pad_to_square = pad_to_square
        if pad_to_square:
            check_arg(
                size is None and size_divisor is None,
                "The size and size_divisor must be None when pad2square is True",
            )
        else:
            check_arg(
                size is not None or size_divisor is not None,
                "only one of size and size_divisor should be valid",
            )
            check_arg(
                size is None or size_divisor is None,
                "only one of size and size_divisor should be valid",
            )

    def _pad_img(self, results: dict[str, Any]) -> None:
        pad_val = self.pad_val.get("img", 0)
        size = self.size
        padded = None
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            if self.pad_to_square:
                side = max(img.shape[:2])
                size = (side, side)
            if size is not None:
                padded = impad(img, shape=size, pad_val=pad_val)
            else:
                assert self.size_divisor is not None
                padded = impad_to_multiple(img, self.size_divisor, pad_val=pad_val)
            results[key] = padded
        if padded is not None:
            results["pad_shape"] = padded.shape
        results["pad_fixed_size"] = size
        results["pad_size_divisor"] = self.size_divisor

    def _pad_masks(self, results: dict[str, Any]) -> None:
        pad_shape = results["pad_shape"][:2]
        pad_val = self.pad_val.get("masks", 0)
        for key in results.get("mask_fields", []):
            results[key] = results[key].pad(pad_shape, pad_val=pad_val)

    def _pad_seg(self, results: dict[str, Any]) -> None:
        pad_val = self.pad_val.get("seg", 255)
        for key in results.get("seg_fields", []):
            results[key] = impad(results[key], shape=results["pad_shape"][:2], pad_val=pad_val)

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        self._pad_img(results)
        self._pad_masks(results)
        self._pad_seg(results)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, size_divisor={self.size_divisor}, "
            f"pad_to_square={self.pad_to_square}, pad_val={self.pad_val})"
        )


@TRANSFORMS.register_module()
class SegRescale:
    """Rescale the semantic maps in ``seg_fields`` by ``scale_factor`` (nearest neighbour;
    each side ``int(side * scale_factor + 0.5)``), e.g. HTC's ``1/8`` after ``Pad`` to get the
    stride-8 ``gt_semantic_seg``.

    Args:
        scale_factor: The factor (1 leaves the maps as they are).
        backend: ``'cv2'`` or ``'pillow'``.

    Example:
        >>> results = {'gt_semantic_seg': np.zeros((224, 320), np.uint8),
        ...            'seg_fields': ['gt_semantic_seg']}
        >>> SegRescale(scale_factor=1 / 8)(results)['gt_semantic_seg'].shape
        (28, 40)
    """

    def __init__(self, scale_factor: float = 1, backend: str = "cv2") -> None:
        if backend not in ("cv2", "pillow"):
            raise ValueError(f"SegRescale: backend must be 'cv2' or 'pillow', got {backend!r}")
        if not scale_factor > 0:
            raise ValueError(f"SegRescale: scale_factor must be positive, got {scale_factor!r}")
        self.scale_factor = scale_factor
        self.backend = backend

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if self.scale_factor != 1:
            for key in results.get("seg_fields", []):
                results[key] = _resize_to(
                    results[key], self.scale_factor, True, "nearest", self.backend
                )
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale_factor={self.scale_factor})"
