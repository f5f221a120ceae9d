"""Run a detector over a test loader and collect v2-format results (v2's ``mmdet/apis/test.py``).

Each image's result is v2's: a list over classes of ``ndarray[K, 5]`` boxes, or
``(bbox_results, segm_results)`` with masks RLE-encoded.

An image the dataset cannot read (it yields an
:class:`~detforge.datasets.issues.UnreadableImage`; a strict dataset raises instead) is skipped
with a warning naming the file, counted, and kept in the results with no detections, so the
results stay one per image of the annotation file (what ``dataset.evaluate`` and ``results.pkl``
readers pair them with); one summary line at the end says how many and which.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from detforge.datasets.collate import UNREADABLE_KEY
from detforge.datasets.issues import DataIssues, UnreadableImage
from detforge.structures.det_result import split_v2_result
from detforge.structures.masks import encode_mask_results
from detforge.utils.device import model_device, to_device
from detforge.utils.dist import get_dist_info
from detforge.utils.image import imread
from detforge.utils.safe_pickle import load_pickle

__all__ = [
    "collect_results_cpu",
    "collect_results_gpu",
    "merge_parts",
    "multi_gpu_test",
    "single_gpu_test",
]


logger = logging.getLogger("detforge")


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
    """RLE-encode the masks of each image's result (box-only results pass through)."""
    encoded = []
    for one in result:
        bbox, segm = split_v2_result(one)
        encoded.append(one if segm is None else (bbox, encode_mask_results(segm)))
    return encoded


def _unreadable_issues(data_loader: Any) -> DataIssues:
    dataset = getattr(data_loader, "dataset", None)
    issues = getattr(dataset, "issues", None)
    source = issues.source if isinstance(issues, DataIssues) else type(dataset).__name__
    return DataIssues(source, action="skipped")


def _split_unreadable(
    data: Mapping[str, Any], issues: DataIssues
) -> tuple[dict[str, Any], list[UnreadableImage | None] | None]:
    """The batch without its unreadable-image markers, and the markers (each counted)."""
    batch = dict(data)
    markers: list[UnreadableImage | None] | None = batch.pop(UNREADABLE_KEY, None)
    for marker in markers or ():
        if marker is not None:
            issues.skip_unreadable(marker)
    return batch, markers


def _keep_places(results: list[Any], markers: list[UnreadableImage | None] | None) -> list[Any]:
    """``results`` of the readable samples with ``None`` in the place of each unreadable one."""
    if markers is None:
        return results
    found = iter(results)
    return [next(found) if marker is None else None for marker in markers]


def _empty_like(result: Any) -> Any:
    """``result`` with no detections: the same per-class structure, every array with 0 rows.

    Example:
        >>> _empty_like([np.ones((2, 5)), np.zeros((0, 5))])
        [array([], shape=(0, 5), dtype=float64), array([], shape=(0, 5), dtype=float64)]
        >>> _empty_like(([np.ones((1, 5))], [[{'size': [2, 2], 'counts': b'4'}]]))[1]
        [[]]
    """
    if isinstance(result, np.ndarray):
        return result[:0].copy()
    if isinstance(result, tuple):
        return tuple(_empty_like(part) for part in result)
    if isinstance(result, list) and all(isinstance(x, np.ndarray | list | tuple) for x in result):
        return [_empty_like(part) for part in result]
    return []  # a class's masks (RLE dicts) or scores


def _fill_unreadable(results: list[Any], data_loader: Any, issues: DataIssues) -> list[Any]:
    """Put an empty result in each unreadable image's place and log the summary line."""
    line = issues.summary()
    if line is None:
        return results
    template = next((r for r in results if r is not None), None)
    if template is not None:
        empty = _empty_like(template)
    else:  # nothing was readable: v2's box-only result with no boxes
        classes = getattr(getattr(data_loader, "dataset", None), "CLASSES", None) or ()
        empty = [np.zeros((0, 5), np.float32) for _ in classes]
    logger.warning(
        "%s; each is kept with an empty detection list, so the results stay aligned with "
        "the annotation file",
        line,
    )
    return [_empty_like(empty) if r is None else r for r in results]


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
        One v2 result per image (masks RLE-encoded); an image the dataset could not read
        gets one with no detections (see the module docstring).
    """
    model.eval()
    device = model_device(model)
    issues = _unreadable_issues(data_loader)
    results: list[Any] = []
    for data in tqdm(data_loader, desc="test", unit="batch", dynamic_ncols=True):
        batch, markers = _split_unreadable(data, issues)
        result = _run_batch(model, batch, device) if batch else []
        if (show or out_dir) and result:
            _draw(model, _first_aug(batch["img_metas"]), result, show, out_dir, show_score_thr)
        results.extend(_keep_places(_encode(result), markers))
    return _fill_unreadable(results, data_loader, issues)


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
    issues = _unreadable_issues(data_loader)
    part: list[Any] = []
    iterator = tqdm(data_loader, desc="test", unit="batch", disable=rank != 0)
    for data in iterator:
        batch, markers = _split_unreadable(data, issues)
        result = _run_batch(model, batch, device) if batch else []
        part.extend(_keep_places(_encode(result), markers))
    part = _fill_unreadable(part, data_loader, issues)  # each rank names its own images
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
