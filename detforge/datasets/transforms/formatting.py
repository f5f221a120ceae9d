"""Formatting transforms: arrays to tensors and the final ``Collect``.

MMDetection v2 wraps outputs in mmcv ``DataContainer`` objects; detforge has none. Here
:class:`DefaultFormatBundle` gives plain tensors (the image as float32 ``Tensor[C, H, W]``),
leaves ``gt_masks`` as mask objects, and :class:`Collect` puts a plain dict under
``img_metas``. The collate pads ``img`` with 0 and ``gt_semantic_seg`` with 255.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from detforge.errors import DetforgeError
from detforge.registry import TRANSFORMS

__all__ = [
    "Collect",
    "DefaultFormatBundle",
    "ImageToTensor",
    "MissingResultKeyError",
    "ToDataContainer",
    "ToTensor",
    "Transpose",
    "WrapFieldsToLists",
    "to_tensor",
]

DEFAULT_META_KEYS = (
    "filename",
    "ori_filename",
    "ori_shape",
    "img_shape",
    "pad_shape",
    "scale_factor",
    "flip",
    "flip_direction",
    "img_norm_cfg",
)

# Which transform normally provides a key, to point at the missing step in an error.
_PROVIDERS = {
    "img": "LoadImageFromFile",
    "filename": "LoadImageFromFile",
    "ori_filename": "LoadImageFromFile",
    "ori_shape": "LoadImageFromFile",
    "img_shape": "LoadImageFromFile",
    "pad_shape": "Resize, Pad or DefaultFormatBundle",
    "scale_factor": "Resize or DefaultFormatBundle",
    "flip": "RandomFlip (or MultiScaleFlipAug)",
    "flip_direction": "RandomFlip (or MultiScaleFlipAug)",
    "img_norm_cfg": "Normalize or DefaultFormatBundle",
    "gt_bboxes": "LoadAnnotations(with_bbox=True)",
    "gt_labels": "LoadAnnotations(with_label=True)",
    "gt_masks": "LoadAnnotations(with_mask=True)",
    "gt_semantic_seg": "LoadAnnotations(with_seg=True)",
    "gt_bboxes_ignore": "LoadAnnotations with 'bboxes_ignore' in ann_info",
    "proposals": "LoadProposals",
}


class MissingResultKeyError(DetforgeError, KeyError):
    """A transform needs a ``results`` key no earlier transform set (a ``KeyError`` in v2)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _missing(owner: str, key: str, results: dict[str, Any]) -> MissingResultKeyError:
    hint = f" (normally set by {_PROVIDERS[key]})" if key in _PROVIDERS else ""
    return MissingResultKeyError(
        f"{owner}: results has no key {key!r}{hint}; available keys: {sorted(results)}"
    )


def to_tensor(data: Any) -> torch.Tensor:
    """Turn a tensor, ndarray, sequence, int or float into a ``torch.Tensor``.

    Arrays share memory (``torch.from_numpy``); an int becomes ``LongTensor[1]`` and a float
    ``FloatTensor[1]``.

    Raises:
        TypeError: the type cannot be converted (strings included).

    Example:
        >>> to_tensor(np.zeros((2, 3), np.float32)).shape
        torch.Size([2, 3])
        >>> to_tensor(3), to_tensor(0.5)
        (tensor([3]), tensor([0.5000]))
    """
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        return torch.from_numpy(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return torch.tensor(data)
    if isinstance(data, int | np.integer) and not isinstance(data, bool):
        return torch.LongTensor([int(data)])
    if isinstance(data, float | np.floating):
        return torch.FloatTensor([float(data)])
    raise TypeError(f"type {type(data)} cannot be converted to tensor.")


def _image_to_chw(img: np.ndarray) -> torch.Tensor:
    if img.ndim < 3:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class ToTensor:
    """Convert ``results[key]`` to a tensor for each key.

    Example:
        >>> ToTensor(keys=['x'])({'x': [1, 2]})['x']
        tensor([1, 2])
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for key in self.keys:
            if key not in results:
                raise _missing(type(self).__name__, key, results)
            results[key] = to_tensor(results[key])
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys})"


@TRANSFORMS.register_module()
class ImageToTensor:
    """Convert ``ndarray[H, W, C]`` (or ``[H, W]``) images to ``Tensor[C, H, W]``.

    The dtype is kept.

    Example:
        >>> ImageToTensor(keys=['img'])({'img': np.zeros((4, 5, 3), np.uint8)})['img'].shape
        torch.Size([3, 4, 5])
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for key in self.keys:
            if key not in results:
                raise _missing(type(self).__name__, key, results)
            results[key] = _image_to_chw(np.asarray(results[key]))
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys})"


@TRANSFORMS.register_module()
class Transpose:
    """Permute the axes of ``results[key]`` for each key (arrays or tensors).

    Example:
        >>> Transpose(keys=['x'], order=(1, 0))({'x': np.zeros((2, 3))})['x'].shape
        (3, 2)
    """

    def __init__(self, keys: Sequence[str], order: Sequence[int]) -> None:
        self.keys = keys
        self.order = order

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for key in self.keys:
            if key not in results:
                raise _missing(type(self).__name__, key, results)
            value = results[key]
            if isinstance(value, torch.Tensor):
                results[key] = value.permute(*self.order)
            else:
                results[key] = value.transpose(self.order)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys}, order={self.order})"


@TRANSFORMS.register_module()
class ToDataContainer:
    """Accepted for v2 configs: detforge has no ``DataContainer``, so this converts arrays
    named in ``fields`` to tensors and leaves everything else as it is.

    Args:
        fields: v2's field specs, e.g. ``(dict(key='img', stack=True), dict(key='gt_bboxes'))``;
            only ``key`` is used.

    Example:
        >>> ToDataContainer(fields=(dict(key='x'),))({'x': np.zeros(2)})['x']
        tensor([0., 0.], dtype=torch.float64)
    """

    def __init__(
        self,
        fields: Sequence[dict[str, Any]] = (
            dict(key="img", stack=True),
            dict(key="gt_bboxes"),
            dict(key="gt_labels"),
        ),
    ) -> None:
        self.fields = fields

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for field in self.fields:
            key = field["key"]
            if key not in results:
                raise _missing(type(self).__name__, key, results)
            if isinstance(results[key], np.ndarray):
                results[key] = to_tensor(results[key])
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fields={self.fields})"


@TRANSFORMS.register_module()
class DefaultFormatBundle:
    """Turn the common fields into tensors (the v2 bundle, without ``DataContainer``).

    - ``img``: float32 (if ``img_to_float`` and uint8) ``Tensor[C, H, W]``;
    - ``proposals``, ``gt_bboxes``, ``gt_bboxes_ignore``, ``gt_labels``: tensors;
    - ``gt_masks``: left as the mask object;
    - ``gt_semantic_seg``: ``Tensor[1, H, W]``.

    If absent, ``pad_shape`` (the image shape), ``scale_factor = 1.0`` and an identity
    ``img_norm_cfg`` are filled in first, so ``Collect``'s default meta keys exist.

    Args:
        img_to_float: Convert a uint8 image to float32.
        pad_val: The collate's padding values ``dict(img, masks, seg)``, kept for v2 configs
            (the collate pads images with 0 and maps with 255).

    Example:
        >>> out = DefaultFormatBundle()({'img': np.zeros((4, 5, 3), np.uint8),
        ...                              'gt_labels': np.array([1])})
        >>> out['img'].shape, out['img'].dtype, out['scale_factor']
        (torch.Size([3, 4, 5]), torch.float32, 1.0)
    """

    def __init__(self, img_to_float: bool = True, pad_val: dict[str, Any] | None = None) -> None:
        self.img_to_float = img_to_float
        self.pad_val = dict(img=0, masks=0, seg=255) if pad_val is None else dict(pad_val)

    @staticmethod
    def _add_default_meta_keys(results: dict[str, Any]) -> dict[str, Any]:
        img = results["img"]
        results.setdefault("pad_shape", img.shape)
        results.setdefault("scale_factor", 1.0)
        num_channels = 1 if img.ndim < 3 else img.shape[2]
        results.setdefault(
            "img_norm_cfg",
            dict(
                mean=np.zeros(num_channels, dtype=np.float32),
                std=np.ones(num_channels, dtype=np.float32),
                to_rgb=False,
            ),
        )
        return results

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        if "img" in results:
            img = results["img"]
            if self.img_to_float and img.dtype == np.uint8:
                img = img.astype(np.float32)
            results = self._add_default_meta_keys(results)
            results["img"] = _image_to_chw(img)
        for key in ("proposals", "gt_bboxes", "gt_bboxes_ignore", "gt_labels"):
            if key in results:
                results[key] = to_tensor(results[key])
        if "gt_semantic_seg" in results:
            seg = np.ascontiguousarray(results["gt_semantic_seg"])
            results["gt_semantic_seg"] = to_tensor(seg[None, ...])
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(img_to_float={self.img_to_float})"


@TRANSFORMS.register_module()
class Collect:
    """Keep only ``keys`` and gather ``meta_keys`` into a plain dict under ``img_metas``.

    Args:
        keys: Data keys passed to the model (e.g. ``img``, ``gt_bboxes``, ``gt_labels``).
        meta_keys: Keys copied into ``img_metas``; v2's default tuple.

    Raises:
        MissingResultKeyError: a key is absent (the message names the transform that sets it).

    Example:
        >>> out = Collect(keys=['img'], meta_keys=('flip',))({'img': 1, 'flip': False, 'x': 2})
        >>> out
        {'img_metas': {'flip': False}, 'img': 1}
    """

    def __init__(self, keys: Sequence[str], meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.keys = keys
        self.meta_keys = meta_keys

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for key in self.meta_keys:
            if key not in results:
                raise _missing(f"{type(self).__name__} (meta_keys)", key, results)
            meta[key] = results[key]
        data: dict[str, Any] = {"img_metas": meta}
        for key in self.keys:
            if key not in results:
                raise _missing(type(self).__name__, key, results)
            data[key] = results[key]
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys})"


@TRANSFORMS.register_module()
class WrapFieldsToLists:
    """Wrap every value in a one-element list (single-scale test without MultiScaleFlipAug).

    Example:
        >>> WrapFieldsToLists()({'img': 1, 'img_metas': {}})
        {'img': [1], 'img_metas': [{}]}
    """

    def __call__(self, results: dict[str, Any]) -> dict[str, Any]:
        for key, value in results.items():
            results[key] = [value]
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
