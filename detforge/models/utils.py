"""Small tensor helpers shared by the heads (MMDetection v2's ``core/utils`` and anchor utils)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = [
    "anchor_inside_flags",
    "filter_scores_and_topk",
    "images_to_levels",
    "multi_apply",
    "select_single_mlvl",
    "unmap",
]


def multi_apply(
    func: Callable[..., Any], *args: Sequence[Any], **kwargs: Any
) -> tuple[list[Any], ...]:
    """Call ``func`` on each zipped tuple of ``args``; return one list per output.

    Example:
        >>> multi_apply(lambda a, b: (a + b, a * b), [1, 2], [3, 4])
        ([4, 6], [3, 8])
    """
    results = [func(*items, **kwargs) for items in zip(*args, strict=True)]
    if not results:
        return ()
    if not isinstance(results[0], tuple):
        return (list(results),)
    return tuple(list(column) for column in zip(*results, strict=True))


def images_to_levels(
    targets: Sequence[torch.Tensor], num_levels: Sequence[int]
) -> list[torch.Tensor]:
    """Per-image targets ``[num_anchors, ...]`` → per-level ``[num_images, n_l, ...]``."""
    stacked = torch.stack(list(targets), 0)
    out = []
    start = 0
    for n in num_levels:
        out.append(stacked[:, start : start + n])
        start += n
    return out


def unmap(data: torch.Tensor, count: int, inds: torch.Tensor, fill: float = 0) -> torch.Tensor:
    """Scatter ``data`` (the rows selected by the bool mask ``inds``) back into ``count`` rows."""
    if data.dim() == 1:
        out = data.new_full((count,), fill)
        out[inds.type(torch.bool)] = data
    else:
        out = data.new_full((count, *data.size()[1:]), fill)
        out[inds.type(torch.bool), :] = data
    return out


def anchor_inside_flags(
    flat_anchors: torch.Tensor,
    valid_flags: torch.Tensor,
    img_shape: Sequence[int],
    allowed_border: float = 0,
) -> torch.Tensor:
    """Valid anchors that lie inside the image, allowing ``allowed_border`` pixels outside.

    A negative ``allowed_border`` keeps every valid anchor (v2).
    """
    img_h, img_w = img_shape[:2]
    if allowed_border >= 0:
        return (
            valid_flags
            & (flat_anchors[:, 0] >= -allowed_border)
            & (flat_anchors[:, 1] >= -allowed_border)
            & (flat_anchors[:, 2] < img_w + allowed_border)
            & (flat_anchors[:, 3] < img_h + allowed_border)
        )
    return valid_flags


def select_single_mlvl(mlvl_tensors: Sequence[torch.Tensor], batch_id: int) -> list[torch.Tensor]:
    """Image ``batch_id`` of every level, detached (v2 detaches before post-processing)."""
    return [level[batch_id].detach() for level in mlvl_tensors]


def filter_scores_and_topk(
    scores: torch.Tensor,
    score_thr: float,
    topk: int,
    results: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor] | None]:
    """Keep ``(anchor, class)`` pairs scoring above ``score_thr``, then the ``topk`` best.

    Args:
        scores: ``Tensor[N, C]``.
        score_thr: Strict lower bound.
        topk: How many pairs to keep at most.
        results: Per-anchor tensors to index the same way.

    Returns:
        ``(scores[K], labels[K], keep_idxs[K], filtered results)`` in descending score order.
    """
    valid_mask = scores > score_thr
    scores = scores[valid_mask]
    valid_idxs = torch.nonzero(valid_mask)
    num_topk = min(topk, valid_idxs.size(0))
    scores, idxs = scores.sort(descending=True)
    scores = scores[:num_topk]
    topk_idxs = valid_idxs[idxs[:num_topk]]
    keep_idxs, labels = topk_idxs.unbind(dim=1)
    filtered = None if results is None else {k: v[keep_idxs] for k, v in results.items()}
    return scores, labels, keep_idxs, filtered
