"""Run a detector over a test loader and collect v2-format results (v2's ``mmdet/apis/test.py``).

Each image's result is v2's: a list over classes of ``ndarray[K, 5]`` boxes, or
``(bbox_results, segm_results)`` with masks RLE-encoded.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from detforge.engine.dist import get_dist_info
from detforge.structures.masks import encode_mask_results
from detforge.utils.device import model_device, to_device
from detforge.utils.image import imread
from detforge.utils.safe_pickle import load_pickle

__all__ = [
    "collect_results_cpu",
    "collect_results_gpu",
    "merge_parts",
    "multi_gpu_test",
    "single_gpu_test",
]


def _first_aug(value: Any) -> Any:
    """Test-time-augmented batches are lists over augmentations; take the first."""
    return value[0] if isinstance(value, list) and isinstance(value[0], list) else value


def _run_batch(model: nn.Module, data: Mapping[str, Any], device: torch.device) -> list[Any]:
    batch = {k: to_device(v, device) for k, v in data.items()}
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
    device = model_device(model)
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

    The loader must use the non-shuffling ``DistributedSampler``: rank ``r`` gets images
    ``r, r + world, ...``, the first ones repeated to even out the shards. The gathered parts
    are re-interleaved and trimmed to ``len(dataset)``, so nothing is lost or duplicated.

    Args:
        model: The detector (DDP-wrapped or not) on this rank's device.
        data_loader: This rank's test loader.
        tmpdir: Collect through files: each rank pickles its part into ``tmpdir`` (a folder
            every rank can read, e.g. on a shared file system), rank 0 merges them and removes
            the folder. v2's ``collect_results_cpu``.
        gpu_collect: Collect with ``all_gather`` (on the GPUs with NCCL). This is also what
            happens when neither option is given (v2 made a ``.dist_test`` folder instead).

    Returns:
        On rank 0 the ``len(dataset)`` results; ``None`` elsewhere.
    """
    model.eval()
    device = model_device(model)
    rank, world_size = get_dist_info()
    part: list[Any] = []
    iterator = tqdm(data_loader, desc="test", unit="batch", disable=rank != 0)
    for data in iterator:
        part.extend(_encode(_run_batch(model, data, device)))
    if world_size == 1:
        return part
    if tmpdir is not None and not gpu_collect:
        parts = collect_results_cpu(part, tmpdir)
    else:
        parts = collect_results_gpu(part)
    if parts is None:
        return None
    return merge_parts(parts, len(data_loader.dataset))


def merge_parts(parts: list[list[Any]], size: int) -> list[Any]:
    """Interleave the ranks' parts back into dataset order and drop the padding.

    Example:
        >>> merge_parts([[0, 2, 4], [1, 3, 0]], 5)
        [0, 1, 2, 3, 4]
    """
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise RuntimeError(f"ranks returned parts of different lengths: {[len(p) for p in parts]}")
    ordered = [item for group in zip(*parts, strict=True) for item in group]
    if len(ordered) < size:
        raise RuntimeError(f"gathered {len(ordered)} results for a dataset of {size} images")
    return ordered[:size]


def collect_results_cpu(part: list[Any], tmpdir: str) -> list[list[Any]] | None:
    """Every rank writes ``tmpdir/part_<rank>.pkl``; rank 0 reads all of them (in rank order)
    and removes ``tmpdir``. Returns the parts on rank 0, ``None`` elsewhere."""
    rank, world_size = get_dist_info()
    folder = Path(tmpdir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"part_{rank}.pkl", "wb") as f:
        pickle.dump(part, f, protocol=pickle.HIGHEST_PROTOCOL)
    dist.barrier()
    if rank != 0:
        return None
    parts = []
    for r in range(world_size):
        path = folder / f"part_{r}.pkl"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: --tmpdir must be a folder that every rank can reach"
            )
        parts.append(load_pickle(path, f"results of rank {r}"))
    shutil.rmtree(folder)
    return parts


def collect_results_gpu(part: list[Any]) -> list[list[Any]] | None:
    """Gather every rank's part with ``all_gather_object``. Returns the parts on rank 0,
    ``None`` elsewhere."""
    rank, world_size = get_dist_info()
    parts: list[Any] = [None] * world_size
    dist.all_gather_object(parts, part)
    return parts if rank == 0 else None
