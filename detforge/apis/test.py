"""Run a detector over a test loader and collect v2-format results (v2's ``mmdet/apis/test.py``).

Each image's result is v2's: a list over classes of ``ndarray[K, 5]`` boxes, or
``(bbox_results, segm_results)`` with masks RLE-encoded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from detforge.engine.dist import get_dist_info
from detforge.structures.masks import encode_mask_results
from detforge.utils.image import imread

__all__ = ["multi_gpu_test", "single_gpu_test"]


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_device(v, device) for v in value)
    return value


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _first_aug(value: Any) -> Any:
    """Test-time-augmented batches are lists over augmentations; take the first."""
    return value[0] if isinstance(value, list) and isinstance(value[0], list) else value


def _run_batch(model: nn.Module, data: Mapping[str, Any], device: torch.device) -> list[Any]:
    batch = {k: _to_device(v, device) for k, v in data.items()}
    if isinstance(batch.get("img"), torch.Tensor):  # a training-style batch: one augmentation
        batch = {k: [v] for k, v in batch.items()}
    with torch.no_grad():
        result = model(return_loss=False, rescale=True, **batch)
    return list(result)


def _encode(result: list[Any]) -> list[Any]:
    if result and isinstance(result[0], tuple):
        return [(bbox, encode_mask_results(segm)) for bbox, segm in result]
    return result


def _draw(
    model: nn.Module,
    metas: list[dict[str, Any]],
    results: list[Any],
    show: bool,
    out_dir: str | None,
    score_thr: float,
) -> None:
    inner: Any = getattr(model, "module", model)
    show_result = inner.show_result
    for meta, result in zip(metas, results, strict=True):
        img = imread(meta["filename"])
        out_file = None
        if out_dir:
            name = meta.get("ori_filename") or os.path.basename(meta["filename"])
            out_file = os.path.join(out_dir, name)
            os.makedirs(os.path.dirname(out_file) or ".", exist_ok=True)
        show_result(img, result, show=show, out_file=out_file, score_thr=score_thr)


def single_gpu_test(
    model: nn.Module,
    data_loader: Any,
    show: bool = False,
    out_dir: str | None = None,
    show_score_thr: float = 0.3,
) -> list[Any]:
    """Results of ``model`` on every image of ``data_loader`` in dataset order.

    Args:
        model: A detector (inputs are moved to the device of its parameters).
        data_loader: A test loader (``test_mode`` dataset, no shuffling).
        show: Display each drawn prediction in a window.
        out_dir: Write each drawn prediction to ``out_dir/<ori_filename>``.
        show_score_thr: Boxes below this score are not drawn.

    Returns:
        One v2 result per image (masks RLE-encoded).
    """
    model.eval()
    device = _model_device(model)
    results: list[Any] = []
    for data in tqdm(data_loader, desc="test", unit="batch", dynamic_ncols=True):
        result = _run_batch(model, data, device)
        if show or out_dir:
            _draw(model, _first_aug(data["img_metas"]), result, show, out_dir, show_score_thr)
        results.extend(_encode(result))
    return results


def multi_gpu_test(
    model: nn.Module,
    data_loader: Any,
    tmpdir: str | None = None,
    gpu_collect: bool = False,
) -> list[Any] | None:
    """Results of every rank, gathered on rank 0 in dataset order (``None`` on other ranks).

    The loader must use the non-shuffling ``DistributedSampler`` (rank ``r`` gets images
    ``r, r + world, ...``, the last ones repeated to even out the shards); the gathered list is
    re-interleaved and trimmed to ``len(dataset)``, so nothing is lost or duplicated.
    Collection always goes through ``all_gather_object``; ``tmpdir`` and ``gpu_collect`` are
    accepted for v2 compatibility.
    """
    model.eval()
    device = _model_device(model)
    rank, world_size = get_dist_info()
    part: list[Any] = []
    iterator = tqdm(data_loader, desc="test", unit="batch", disable=rank != 0)
    for data in iterator:
        part.extend(_encode(_run_batch(model, data, device)))
    if world_size == 1:
        return part
    parts: list[Any] = [None] * world_size
    dist.all_gather_object(parts, part)
    if rank != 0:
        return None
    ordered = [item for group in zip(*parts, strict=False) for item in group]
    return ordered[: len(data_loader.dataset)]
