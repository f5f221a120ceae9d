"""Instance masks: :class:`BitmapMasks`, :class:`PolygonMasks` and mask-result helpers.

Both mask kinds are MMDetection v2 compatible (same constructor, methods and semantics) and
are what ``gt_masks`` holds in the pipeline results dict. ``out_shape`` arguments are
``(h, w)``; every method returns a new object. :func:`rle_encode` / :func:`rle_decode` are the
one conversion between a binary mask and a pycocotools compressed RLE dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch

from detforge.structures.masks_bitmap import BaseInstanceMasks, BitmapMasks, rle_decode, rle_encode
from detforge.structures.masks_polygon import PolygonMasks, polygon_to_bitmap

__all__ = [
    "BaseInstanceMasks",
    "BitmapMasks",
    "InstanceMasks",
    "PolygonMasks",
    "encode_mask_results",
    "mask2bbox",
    "mask2ndarray",
    "polygon_to_bitmap",
    "rle_decode",
    "rle_encode",
    "split_mask_scores",
]

InstanceMasks: TypeAlias = BitmapMasks | PolygonMasks


def _encode_one(mask: Any) -> dict[str, Any]:
    return mask if isinstance(mask, dict) else rle_encode(mask)  # a dict is already RLE


def mask2ndarray(mask: BitmapMasks | PolygonMasks | torch.Tensor | np.ndarray) -> np.ndarray:
    """Masks of any kind as ``ndarray [n, h, w]`` (v2's ``mmdet.core.mask2ndarray``).

    Raises:
        TypeError: ``mask`` is none of the kinds above.

    Example:
        >>> mask2ndarray(BitmapMasks(np.ones((2, 3, 4), np.uint8), 3, 4)).shape
        (2, 3, 4)
    """
    if isinstance(mask, BitmapMasks | PolygonMasks):
        return mask.to_ndarray()
    if isinstance(mask, torch.Tensor):
        return mask.detach().cpu().numpy()
    if isinstance(mask, np.ndarray):
        return mask
    raise TypeError(f"mask2ndarray: unsupported mask type {type(mask).__name__}")


def split_mask_scores(segm_results: Any) -> tuple[Sequence[Sequence[Any]], Any]:
    """``(segm_results, mask_scores)`` of the mask part of a v2 result; ``mask_scores`` is None
    unless it has the mask-scoring form ``(segm_results, mask_scores)`` (MS R-CNN).

    Example:
        >>> split_mask_scores([[], []]), split_mask_scores(([[]], [[]]))
        (([[], []], None), ([[]], [[]]))
    """
    if isinstance(segm_results, tuple):
        segms, scores = segm_results
        return segms, scores
    return segm_results, None


def encode_mask_results(
    mask_results: Sequence[Sequence[Any]] | tuple[Sequence[Sequence[Any]], Any],
) -> list[list[dict[str, Any]]] | tuple[list[list[dict[str, Any]]], Any]:
    """RLE-encode the per-class mask lists of one image's v2 result.

    Args:
        mask_results: A list over classes of lists of ``ndarray[H, W]`` masks, or the
            mask-scoring form ``(cls_segms, cls_mask_scores)`` (scores pass through).

    Returns:
        The same nesting with each mask replaced by a pycocotools RLE dict
        (``{'size': [H, W], 'counts': bytes}``).

    Example:
        >>> import numpy as np
        >>> m = np.zeros((3, 4), bool); m[1, 1:3] = True
        >>> rle = encode_mask_results([[m], []])
        >>> rle[0][0]['size'], int(rle_decode(rle[0][0]).sum()), rle[1]
        ([3, 4], 2, [])
    """
    segms, scores = split_mask_scores(mask_results)
    encoded = [[_encode_one(m) for m in per_cls] for per_cls in segms]
    return encoded if scores is None else (encoded, scores)


def mask2bbox(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes of binary masks (``x2 = last column + 1``; empty mask gives zeros).

    Args:
        masks: ``Tensor[N, H, W]`` bool or 0/1.

    Returns:
        ``Tensor[N, 4]`` float32 on the masks' device.

    Example:
        >>> m = torch.zeros(2, 4, 5, dtype=torch.bool); m[0, 1:3, 2:5] = True
        >>> mask2bbox(m).tolist()
        [[2.0, 1.0, 5.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
    """
    masks = masks.bool()
    n, h, w = masks.shape
    if n == 0 or h == 0 or w == 0:
        return torch.zeros((n, 4), dtype=torch.float32, device=masks.device)
    cols = masks.any(dim=1)
    rows = masks.any(dim=2)
    xs = torch.arange(w, device=masks.device)
    ys = torch.arange(h, device=masks.device)
    big = torch.iinfo(torch.long).max
    x1 = torch.where(cols, xs, big).amin(dim=1)
    x2 = torch.where(cols, xs + 1, 0).amax(dim=1)
    y1 = torch.where(rows, ys, big).amin(dim=1)
    y2 = torch.where(rows, ys + 1, 0).amax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1).float()
    empty = ~(cols.any(dim=1) & rows.any(dim=1))
    boxes[empty] = 0
    return boxes
