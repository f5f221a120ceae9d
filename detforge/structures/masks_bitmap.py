"""Per-pixel instance masks (:class:`BitmapMasks`) and the base class both mask kinds share.

Import from :mod:`detforge.structures.masks`; this module only holds the implementation.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
from torchvision.ops import roi_align

from detforge.utils.image import imflip, impad, imrescale, imresize, imrotate, imshear, imtranslate
from detforge.utils.image import rescale_size as _rescale_size

__all__ = ["BaseInstanceMasks", "BitmapMasks", "rle_decode", "rle_encode"]

FLIP_DIRECTIONS = ("horizontal", "vertical", "diagonal")


def rle_encode(mask: Any, *, str_counts: bool = False) -> dict[str, Any]:
    """Encode one binary mask as a pycocotools compressed RLE dict.

    Args:
        mask: ``ndarray[H, W]`` (bool or 0/1, cast to uint8), or what ``np.asarray`` takes.
        str_counts: ``counts`` as an ASCII ``str``, as JSON files hold it (COCO annotations
            and result files), instead of the ``bytes`` pycocotools returns (``results.pkl``,
            v2's ``encode_mask_results``).

    Returns:
        ``{'size': [H, W], 'counts': bytes | str}``.

    Raises:
        ValueError: ``mask`` is not 2-D.

    Example:
        >>> m = np.zeros((3, 4), bool); m[1, 1:3] = True
        >>> rle_encode(m), rle_encode(m, str_counts=True)['counts']
        ({'size': [3, 4], 'counts': b'41202'}, '41202')
        >>> bool((rle_decode(rle_encode(m)) == m).all())
        True
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"rle_encode: a mask must be 2-D [H, W], got shape {arr.shape}")
    rle: dict[str, Any] = mask_utils.encode(np.asfortranarray(arr[:, :, None], dtype=np.uint8))[0]
    if str_counts:
        rle["counts"] = rle["counts"].decode("ascii")
    return rle


def rle_decode(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode one pycocotools compressed RLE dict (``counts`` bytes or str) to ``ndarray[H, W]``
    uint8. ``rle`` is not modified.

    pycocotools built against older numpy emits a harmless ``DeprecationWarning`` about
    ``__array__(copy=...)`` on numpy 2; it is silenced here.

    Example:
        >>> rle_decode({'size': [2, 3], 'counts': '222'}).tolist()
        [[0, 1, 0], [0, 1, 0]]
    """
    rle = dict(rle)
    if isinstance(rle.get("counts"), str):
        rle["counts"] = rle["counts"].encode("ascii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_utils.decode(rle))


def check_flip_direction(direction: str) -> None:
    """Raise ``ValueError`` unless ``direction`` is a known flip direction."""
    if direction not in FLIP_DIRECTIONS:
        raise ValueError(f"flip_direction must be one of {FLIP_DIRECTIONS}, got {direction!r}")


def clip_crop_box(bbox: np.ndarray, height: int, width: int) -> tuple[int, int, int, int, int, int]:
    """Clip a crop box to the canvas; return ``x1, y1, x2, y2, w, h`` (w, h at least 1)."""
    box = np.asarray(bbox)
    if box.shape != (4,):
        raise ValueError(f"crop bbox must be ndarray[4] (x1, y1, x2, y2), got shape {box.shape}")
    x1, x2 = (int(v) for v in np.clip(box[0::2], 0, width))
    y1, y2 = (int(v) for v in np.clip(box[1::2], 0, height))
    return x1, y1, x2, y2, max(x2 - x1, 1), max(y2 - y1, 1)


class BaseInstanceMasks(abc.ABC):
    """What :class:`BitmapMasks` and :class:`PolygonMasks` have in common.

    Both hold ``len(self)`` instances on a ``height x width`` canvas and offer the same
    geometric operations, each returning a new object. ``out_shape`` is always ``(h, w)``.
    """

    height: int
    width: int

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_masks={len(self)}, height={self.height}, "
            f"width={self.width})"
        )

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, index: Any) -> BaseInstanceMasks: ...

    @abc.abstractmethod
    def rescale(self, scale: float | tuple[int, int], interpolation: str = "nearest") -> Any: ...

    @abc.abstractmethod
    def resize(self, out_shape: tuple[int, int], interpolation: str = "nearest") -> Any: ...

    @abc.abstractmethod
    def flip(self, flip_direction: str = "horizontal") -> Any: ...

    @abc.abstractmethod
    def pad(self, out_shape: tuple[int, int], pad_val: int = 0) -> Any: ...

    @abc.abstractmethod
    def crop(self, bbox: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> Any: ...

    @property
    @abc.abstractmethod
    def areas(self) -> np.ndarray: ...

    @abc.abstractmethod
    def get_bboxes(self) -> np.ndarray: ...

    @abc.abstractmethod
    def to_ndarray(self) -> np.ndarray: ...

    def to_tensor(self, dtype: torch.dtype, device: str | torch.device = "cpu") -> torch.Tensor:
        """The masks as ``Tensor[N, H, W]`` of ``dtype`` on ``device``."""
        return torch.as_tensor(self.to_ndarray(), dtype=dtype, device=device).clone()


def _channels_last_op(masks: np.ndarray, op: Any) -> np.ndarray:
    """Apply an image op to all masks at once as one ``[H, W, N]`` image."""
    out = op(np.ascontiguousarray(masks.transpose(1, 2, 0)))
    if out.ndim == 2:
        out = out[:, :, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1)).astype(masks.dtype)


class BitmapMasks(BaseInstanceMasks):
    """Instance masks stored as one binary image per instance.

    Args:
        masks: ``ndarray[N, H, W]`` (usually uint8 0/1) or a list of ``ndarray[H, W]``.
        height: Canvas height ``H``.
        width: Canvas width ``W``.

    Example:
        >>> m = BitmapMasks(np.zeros((2, 4, 6), np.uint8), height=4, width=6)
        >>> len(m), m.resize((8, 12)).masks.shape
        (2, (2, 8, 12))
    """

    def __init__(self, masks: np.ndarray | Sequence[np.ndarray], height: int, width: int) -> None:
        self.height = int(height)
        self.width = int(width)
        if len(masks) == 0:
            self.masks = np.empty((0, self.height, self.width), dtype=np.uint8)
            return
        if not isinstance(masks, np.ndarray | list | tuple):
            raise TypeError(f"BitmapMasks expects an ndarray or a list, got {type(masks).__name__}")
        stacked = np.stack(list(masks)) if not isinstance(masks, np.ndarray) else masks
        if stacked.ndim == 2:
            stacked = stacked[None]
        if stacked.ndim != 3 or stacked.shape[1:] != (self.height, self.width):
            raise ValueError(
                f"BitmapMasks: masks of shape {stacked.shape} do not match "
                f"(N, height={self.height}, width={self.width})"
            )
        self.masks = stacked

    @classmethod
    def random(
        cls,
        num_masks: int = 3,
        height: int = 32,
        width: int = 32,
        dtype: type = np.uint8,
        rng: np.random.Generator | int | None = None,
    ) -> BitmapMasks:
        """Random masks for tests (each pixel is on with probability 0.9, as in mmdet).

        Example:
            >>> BitmapMasks.random(2, 5, 7, rng=0).masks.shape
            (2, 5, 7)
        """
        gen = np.random.default_rng(rng)
        return cls((gen.random((num_masks, height, width)) > 0.1).astype(dtype), height, width)

    def __len__(self) -> int:
        return len(self.masks)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.masks)

    def __getitem__(self, index: Any) -> BitmapMasks:
        """Select instances by int, slice, index array or boolean array."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        picked = self.masks[index].reshape(-1, self.height, self.width)
        return BitmapMasks(picked, self.height, self.width)

    def _empty(self, height: int, width: int) -> BitmapMasks:
        return BitmapMasks(np.empty((0, height, width), dtype=self.masks.dtype), height, width)

    def rescale(
        self, scale: float | tuple[int, int], interpolation: str = "nearest"
    ) -> BitmapMasks:
        """Keep-ratio resize of every mask, as :func:`detforge.utils.image.imrescale`."""
        if len(self) == 0:
            new_w, new_h = _rescale_size((self.width, self.height), scale)
            return self._empty(new_h, new_w)
        out = np.stack([imrescale(m, scale, interpolation=interpolation) for m in self.masks])
        return BitmapMasks(out, *out.shape[1:])

    def resize(self, out_shape: tuple[int, int], interpolation: str = "nearest") -> BitmapMasks:
        """Resize every mask to ``out_shape = (h, w)``."""
        h, w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._empty(h, w)
        out = np.stack([imresize(m, (w, h), interpolation=interpolation) for m in self.masks])
        return BitmapMasks(out, h, w)

    def flip(self, flip_direction: str = "horizontal") -> BitmapMasks:
        """Mirror the masks (``'horizontal'``, ``'vertical'`` or ``'diagonal'``)."""
        check_flip_direction(flip_direction)
        if len(self) == 0:
            return BitmapMasks(self.masks, self.height, self.width)
        out = np.stack([imflip(m, flip_direction) for m in self.masks])
        return BitmapMasks(out, self.height, self.width)

    def pad(self, out_shape: tuple[int, int], pad_val: int = 0) -> BitmapMasks:
        """Pad at the bottom/right to ``out_shape = (h, w)`` with ``pad_val``."""
        h, w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._empty(h, w)
        out = np.stack([impad(m, shape=(h, w), pad_val=pad_val) for m in self.masks])
        return BitmapMasks(out, h, w)

    def crop(self, bbox: np.ndarray) -> BitmapMasks:
        """Cut out ``bbox = [x1, y1, x2, y2]`` (clipped to the canvas; at least 1x1)."""
        x1, y1, _, _, w, h = clip_crop_box(bbox, self.height, self.width)
        if len(self) == 0:
            return self._empty(h, w)
        out = self.masks[:, y1 : y1 + h, x1 : x1 + w]
        return BitmapMasks(out, *out.shape[1:])

    def crop_and_resize(
        self,
        bboxes: np.ndarray | torch.Tensor,
        out_shape: tuple[int, int],
        inds: np.ndarray | torch.Tensor,
        device: str | torch.device = "cpu",
        interpolation: str = "bilinear",
        binarize: bool = True,
    ) -> BitmapMasks:
        """Mask targets: crop mask ``inds[i]`` by ``bboxes[i]`` and resample to ``out_shape``.

        Uses RoIAlign with MMDetection's settings (``aligned=True``, adaptive sampling,
        boxes in pixel coordinates) and keeps values ``>= 0.5`` when ``binarize``.

        Args:
            bboxes: ``ndarray[K, 4]`` or ``Tensor[K, 4]`` boxes ``x1, y1, x2, y2``.
            out_shape: ``(h, w)`` of each output mask.
            inds: ``[K]`` index of the mask each box crops.
            device: Where RoIAlign runs.
            interpolation: Kept for mmdet signature compatibility (RoIAlign is bilinear).
            binarize: Threshold at 0.5; otherwise return the soft values (float).

        Returns:
            ``BitmapMasks`` with ``K`` masks of ``out_shape``.

        Example:
            >>> m = BitmapMasks(np.ones((1, 8, 8), np.uint8), 8, 8)
            >>> m.crop_and_resize(np.array([[0., 0., 4., 4.]]), (2, 2), np.array([0])).masks
            array([[[ True,  True],
                    [ True,  True]]])
        """
        del interpolation
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._empty(out_h, out_w)
        boxes = torch.as_tensor(bboxes, device=device)
        if not boxes.is_floating_point():
            boxes = boxes.float()
        index = torch.as_tensor(inds, device=device).long()
        if boxes.shape[0] == 0:
            return BitmapMasks(np.empty((0, out_h, out_w), dtype=bool), out_h, out_w)
        masks = torch.from_numpy(np.ascontiguousarray(self.masks)).to(device)
        # One batch element per box: box i samples only the mask it was assigned.
        selected = masks.index_select(0, index).to(dtype=boxes.dtype)[:, None]
        batch_idx = torch.arange(boxes.shape[0], device=device, dtype=boxes.dtype)[:, None]
        rois = torch.cat([batch_idx, boxes[:, :4]], dim=1)
        targets = roi_align(
            selected, rois, (out_h, out_w), spatial_scale=1.0, sampling_ratio=0, aligned=True
        ).squeeze(1)
        result = (targets >= 0.5) if binarize else targets
        return BitmapMasks(result.cpu().numpy(), out_h, out_w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> BitmapMasks:
        """Place the masks at ``(top, left)`` on a larger zero canvas (see ``Expand``)."""
        if len(self) == 0:
            return self._empty(expanded_h, expanded_w)
        out = np.zeros((len(self), expanded_h, expanded_w), dtype=self.masks.dtype)
        out[:, top : top + self.height, left : left + self.width] = self.masks
        return BitmapMasks(out, expanded_h, expanded_w)

    def translate(
        self,
        out_shape: tuple[int, int],
        offset: float,
        direction: str = "horizontal",
        fill_val: float = 0,
        interpolation: str = "bilinear",
    ) -> BitmapMasks:
        """Shift by ``offset`` pixels; the canvas keeps its size and is labelled ``out_shape``."""
        if len(self) == 0:
            return self._empty(*out_shape)
        out = _channels_last_op(
            self.masks,
            lambda img: imtranslate(
                img, offset, direction, border_value=fill_val, interpolation=interpolation
            ),
        )
        return BitmapMasks(out, *out_shape)

    def shear(
        self,
        out_shape: tuple[int, int],
        magnitude: float,
        direction: str = "horizontal",
        border_value: float = 0,
        interpolation: str = "bilinear",
    ) -> BitmapMasks:
        """Shear as :func:`detforge.utils.image.imshear`."""
        if len(self) == 0:
            return self._empty(*out_shape)
        out = _channels_last_op(
            self.masks,
            lambda img: imshear(
                img, magnitude, direction, border_value=border_value, interpolation=interpolation
            ),
        )
        return BitmapMasks(out, *out_shape)

    def rotate(
        self,
        out_shape: tuple[int, int],
        angle: float,
        center: tuple[float, float] | None = None,
        scale: float = 1.0,
        fill_val: float = 0,
    ) -> BitmapMasks:
        """Rotate clockwise by ``angle`` degrees as :func:`detforge.utils.image.imrotate`."""
        if len(self) == 0:
            return self._empty(*out_shape)
        out = _channels_last_op(
            self.masks,
            lambda img: imrotate(img, angle, center=center, scale=scale, border_value=fill_val),
        )
        return BitmapMasks(out, *out_shape)

    @property
    def areas(self) -> np.ndarray:
        """``ndarray[N]``: number of on pixels per mask."""
        return self.masks.sum((1, 2))

    def get_bboxes(self) -> np.ndarray:
        """``ndarray[N, 4]`` float32 tight boxes (``x2 = last column + 1``); empty mask: zeros.

        Example:
            >>> m = np.zeros((1, 5, 5), np.uint8); m[0, 1:3, 2:4] = 1
            >>> BitmapMasks(m, 5, 5).get_bboxes().tolist()
            [[2.0, 1.0, 4.0, 3.0]]
        """
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        cols: np.ndarray = np.any(self.masks, axis=1)
        rows: np.ndarray = np.any(self.masks, axis=2)
        for i in range(len(self)):
            xs = np.flatnonzero(cols[i])
            ys = np.flatnonzero(rows[i])
            if len(xs) and len(ys):
                boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
        return boxes

    def to_ndarray(self) -> np.ndarray:
        """The ``ndarray[N, H, W]`` itself."""
        return self.masks
