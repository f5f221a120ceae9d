"""``build_dataset`` and ``build_dataloader`` with v2's arguments and rules."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from functools import partial
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from detforge.datasets.collate import collate
from detforge.datasets.samplers import (
    DistributedGroupSampler,
    DistributedSampler,
    GroupSampler,
    InfiniteBatchSampler,
    InfiniteGroupBatchSampler,
)
from detforge.datasets.wrappers import (
    ClassBalancedDataset,
    ConcatDataset,
    MultiImageMixDataset,
    RepeatDataset,
)
from detforge.registry import DATASETS, PIPELINES, build_module
from detforge.utils.dist import get_dist_info

# DATASETS and PIPELINES are here for v2 plug-ins (``from mmdet.datasets.builder import ...``).
__all__ = ["DATASETS", "PIPELINES", "build_dataloader", "build_dataset", "worker_init_fn"]


def _concat_dataset(cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None) -> Any:
    """A config whose ``ann_file`` is a list becomes one dataset per file, concatenated."""
    ann_files = cfg["ann_file"]
    separate_eval = cfg.get("separate_eval", True)
    datasets = []
    for index, ann_file in enumerate(ann_files):
        part = copy.deepcopy(dict(cfg))
        part.pop("separate_eval", None)
        part["ann_file"] = ann_file
        for key in ("img_prefix", "seg_prefix", "proposal_file"):
            value = cfg.get(key)
            if isinstance(value, list | tuple):
                if len(value) != len(ann_files):
                    raise ValueError(
                        f"{key} has {len(value)} entries for {len(ann_files)} ann_files"
                    )
                part[key] = value[index]
        datasets.append(build_dataset(part, default_args))
    return ConcatDataset(datasets, separate_eval)


def build_dataset(cfg: Any, default_args: Mapping[str, Any] | None = None) -> Any:
    """Build a dataset (or wrapper) from a config dict, or a list of them (concatenated).

    Example:
        >>> ds = build_dataset(dict(type='RepeatDataset', times=2, dataset=dict(
        ...     type='CustomDataset', ann_file='missing.pkl', pipeline=[])))
        Traceback (most recent call last):
        ...
        FileNotFoundError: CustomDataset: annotation file not found: missing.pkl ...
    """
    if isinstance(cfg, list | tuple):
        return ConcatDataset([build_dataset(c, default_args) for c in cfg])
    kind = cfg.get("type")
    if kind == "ConcatDataset":
        parts = [build_dataset(c, default_args) for c in cfg["datasets"]]
        return ConcatDataset(parts, cfg.get("separate_eval", True))
    if kind == "RepeatDataset":
        return RepeatDataset(build_dataset(cfg["dataset"], default_args), cfg["times"])
    if kind == "ClassBalancedDataset":
        inner = build_dataset(cfg["dataset"], default_args)
        return ClassBalancedDataset(
            inner, cfg["oversample_thr"], filter_empty_gt=cfg.get("filter_empty_gt", True)
        )
    if kind == "MultiImageMixDataset":
        args = {k: v for k, v in cfg.items() if k != "type"}
        args["dataset"] = build_dataset(cfg["dataset"])
        return MultiImageMixDataset(**args)
    if isinstance(cfg.get("ann_file"), list | tuple):
        return _concat_dataset(cfg, default_args)
    return build_module(cfg, DATASETS, default_args, path="data")


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int | None) -> None:
    """Set up a loader worker: one compute thread (the workers already run in parallel, as
    v2's ``opencv_num_threads=0`` / ``OMP_NUM_THREADS=1``), and with a ``seed``, seed numpy,
    random and torch with ``num_workers * rank + worker_id + seed``."""
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    if seed is None:
        return
    worker_seed = num_workers * rank + worker_id + seed
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)


def build_dataloader(
    dataset: Any,
    samples_per_gpu: int,
    workers_per_gpu: int,
    num_gpus: int = 1,
    dist: bool = True,
    shuffle: bool = True,
    seed: int | None = None,
    runner_type: str = "EpochBasedRunner",
    persistent_workers: bool = False,
    **kwargs: Any,
) -> DataLoader[Any]:
    """A DataLoader with v2's sampler choice and seeding.

    ``IterBasedRunner`` gets an infinite (group) batch sampler; distributed training gets
    ``DistributedGroupSampler`` (shuffle) or ``DistributedSampler``; a single process gets
    ``GroupSampler`` (shuffle) or sequential order. With ``seed``, each worker is seeded with
    ``num_workers * rank + worker_id + seed``.
    """
    rank, world_size = get_dist_info()
    if dist:
        batch_size, num_workers = samples_per_gpu, workers_per_gpu
    else:
        batch_size, num_workers = num_gpus * samples_per_gpu, num_gpus * workers_per_gpu
    sampler: Any = None
    batch_sampler: Any = None
    if runner_type == "IterBasedRunner":
        if shuffle:
            batch_sampler = InfiniteGroupBatchSampler(
                dataset, batch_size, world_size, rank, seed=seed
            )
        else:
            batch_sampler = InfiniteBatchSampler(
                dataset,
                batch_size,
                world_size,
                rank,
                seed=seed,
                shuffle=False,
            )
        batch_size = 1
    elif dist:
        if shuffle:
            sampler = DistributedGroupSampler(dataset, samples_per_gpu, world_size, rank, seed=seed)
        else:
            sampler = DistributedSampler(
                dataset,
                world_size,
                rank,
                shuffle=False,
                seed=seed,
            )
    elif shuffle:
        sampler = GroupSampler(dataset, samples_per_gpu)
    init_fn = partial(worker_init_fn, num_workers=num_workers, rank=rank, seed=seed)
    loader_args: dict[str, Any] = dict(
        batch_size=batch_size,
        sampler=sampler,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=partial(collate, samples_per_gpu=samples_per_gpu),
        pin_memory=kwargs.pop("pin_memory", False),
        worker_init_fn=init_fn,
        **kwargs,
    )
    if batch_sampler is not None:
        loader_args.pop("batch_size")
        loader_args.pop("sampler")
    if num_workers > 0:
        loader_args["persistent_workers"] = persistent_workers
    return DataLoader(dataset, **loader_args)
