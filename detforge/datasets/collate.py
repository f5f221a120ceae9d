"""Batching: images padded bottom-right to the batch's largest size and stacked; everything
else kept as per-image lists, under the same keys the pipeline produced (``Collect``).

A test set returns an :class:`~detforge.datasets.issues.UnreadableImage` for an image it cannot
read; the batch then also holds ``UNREADABLE_KEY``: one entry per sample, the marker or ``None``
for a sample that was collated, so the test loop can keep every image's place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from detforge.datasets.issues import UnreadableImage

__all__ = ["PAD_VALUES", "UNREADABLE_KEY", "collate", "pad_and_stack"]

# keys stacked into one tensor, and the value their padding takes (v2's DefaultFormatBundle)
PAD_VALUES = {"img": 0.0, "gt_semantic_seg": 255.0}
# batch key of the per-sample UnreadableImage markers (present only when there is one)
UNREADABLE_KEY = "unreadable_images"


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


def collate(
    batch: Sequence[Mapping[str, Any] | UnreadableImage], samples_per_gpu: int = 1
) -> dict[str, Any]:
    """Collate pipeline outputs into a batch.

    Training samples (``img`` a tensor) give ``img: Tensor[B, C, H, W]`` and lists of length B
    for the other keys. Test-time-augmented samples (``img`` a list over augmentations, from
    ``MultiScaleFlipAug``) give lists over augmentations of those: ``img[k]`` is
    ``Tensor[B, C, H, W]`` and ``img_metas[k]`` the B metas, as v2's ``forward_test`` expects.

    Args:
        batch: Samples from the dataset.
        samples_per_gpu: Accepted for v2 compatibility (padding is over the whole batch).

    Example:
        >>> bad = UnreadableImage('b.jpg', 'image file is empty: b.jpg')
        >>> out = collate([dict(img=torch.zeros(3, 2, 2)), bad])
        >>> out['img'].shape, out[UNREADABLE_KEY] == [None, bad]
        (torch.Size([1, 3, 2, 2]), True)
    """
    if not batch:
        raise ValueError("empty batch")
    samples = [s for s in batch if not isinstance(s, UnreadableImage)]
    out = _collate_samples(samples) if samples else {}
    if len(samples) < len(batch):
        out[UNREADABLE_KEY] = [s if isinstance(s, UnreadableImage) else None for s in batch]
    return out


def _collate_samples(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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
