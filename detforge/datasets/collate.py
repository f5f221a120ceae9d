"""Batching: images padded bottom-right to the batch's largest size and stacked; everything
else kept as per-image lists, under the same keys the pipeline produced (``Collect``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["PAD_VALUES", "collate", "pad_and_stack"]

# keys stacked into one tensor, and the value their padding takes (v2's DefaultFormatBundle)
PAD_VALUES = {"img": 0.0, "gt_semantic_seg": 255.0}


def pad_and_stack(tensors: Sequence[torch.Tensor], pad_value: float = 0.0) -> torch.Tensor:
    """Pad ``[..., H, W]`` tensors on the bottom and right to the largest ``H, W`` and stack.

    Example:
        >>> pad_and_stack([torch.ones(3, 2, 4), torch.ones(3, 4, 2)]).shape
        torch.Size([2, 3, 4, 4])
    """
    if not tensors:
        raise ValueError("nothing to stack")
    shapes = {t.shape[:-2] for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"tensors differ in leading dimensions: {sorted(shapes)}")
    height = max(t.shape[-2] for t in tensors)
    width = max(t.shape[-1] for t in tensors)
    padded = [
        F.pad(t, (0, width - t.shape[-1], 0, height - t.shape[-2]), value=pad_value)
        if t.shape[-2:] != (height, width)
        else t
        for t in tensors
    ]
    return torch.stack(padded)


def _collate_key(key: str, values: list[Any]) -> Any:
    if key in PAD_VALUES and all(isinstance(v, torch.Tensor) for v in values):
        return pad_and_stack(values, PAD_VALUES[key])
    return values


def collate(batch: Sequence[Mapping[str, Any]], samples_per_gpu: int = 1) -> dict[str, Any]:
    """Collate pipeline outputs into a batch.

    Training samples (``img`` a tensor) give ``img: Tensor[B, C, H, W]`` and lists of length B
    for the other keys. Test-time-augmented samples (``img`` a list over augmentations, from
    ``MultiScaleFlipAug``) give lists over augmentations of those: ``img[k]`` is
    ``Tensor[B, C, H, W]`` and ``img_metas[k]`` the B metas, as v2's ``forward_test`` expects.

    Args:
        batch: Samples from the dataset.
        samples_per_gpu: Accepted for v2 compatibility (padding is over the whole batch).
    """
    if not batch:
        raise ValueError("empty batch")
    keys = list(batch[0])
    for sample in batch[1:]:
        if list(sample) != keys:
            raise ValueError(f"samples in a batch have different keys: {keys} vs {list(sample)}")
    out: dict[str, Any] = {}
    for key in keys:
        values = [sample[key] for sample in batch]
        if isinstance(batch[0].get("img"), list):
            num_aug = len(values[0])
            out[key] = [_collate_key(key, [v[k] for v in values]) for k in range(num_aug)]
        else:
            out[key] = _collate_key(key, values)
    return out
