"""Samplers (v2): aspect-ratio groups so that a batch holds one orientation (less padding).

``GroupSampler`` (one process), ``DistributedGroupSampler``/``DistributedSampler`` (DDP, one
shard per rank), ``InfiniteGroupBatchSampler``/``InfiniteBatchSampler`` (``IterBasedRunner``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DistributedSampler as _TorchDistributedSampler
from torch.utils.data import Sampler

from detforge.utils.dist import get_dist_info, sync_random_seed

__all__ = [
    "DistributedGroupSampler",
    "DistributedSampler",
    "GroupSampler",
    "InfiniteBatchSampler",
    "InfiniteGroupBatchSampler",
]


def _flags(dataset: Any) -> np.ndarray:
    if not hasattr(dataset, "flag"):
        raise AttributeError(f"{type(dataset).__name__} has no aspect-ratio 'flag' to group by")
    return np.asarray(dataset.flag).astype(np.int64)


class GroupSampler(Sampler[int]):
    """Shuffle within aspect-ratio groups, pad each group to whole batches, shuffle batches."""

    def __init__(self, dataset: Any, samples_per_gpu: int = 1) -> None:
        self.dataset = dataset
        self.samples_per_gpu = samples_per_gpu
        self.flag = _flags(dataset)
        self.group_sizes = np.bincount(self.flag)
        self.num_samples = sum(
            math.ceil(size / samples_per_gpu) * samples_per_gpu for size in self.group_sizes
        )

    def __iter__(self) -> Iterator[int]:
        chunks = []
        for group, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            indices = np.where(self.flag == group)[0]
            np.random.shuffle(indices)
            extra = math.ceil(size / self.samples_per_gpu) * self.samples_per_gpu - len(indices)
            chunks.append(np.concatenate([indices, np.random.choice(indices, extra)]))
        flat = np.concatenate(chunks)
        n = self.samples_per_gpu
        order = np.random.permutation(len(flat) // n)
        batches = [flat[i * n : (i + 1) * n] for i in order]
        result = np.concatenate(batches).astype(np.int64).tolist()
        return iter(result)

    def __len__(self) -> int:
        return self.num_samples


class DistributedGroupSampler(Sampler[int]):
    """:class:`GroupSampler` for DDP: every rank gets ``num_samples`` of one shared permutation.

    Call :meth:`set_epoch` every epoch for a new permutation (seeded by ``seed + epoch``).
    """

    def __init__(
        self,
        dataset: Any,
        samples_per_gpu: int = 1,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int | None = 0,
    ) -> None:
        _rank, _world = get_dist_info()
        self.num_replicas = _world if num_replicas is None else num_replicas
        self.rank = _rank if rank is None else rank
        self.dataset = dataset
        self.samples_per_gpu = samples_per_gpu
        self.epoch = 0
        self.seed = sync_random_seed(seed) if seed is not None else 0
        self.flag = _flags(dataset)
        self.group_sizes = np.bincount(self.flag)
        per_rank = samples_per_gpu * self.num_replicas
        self.num_samples = sum(
            math.ceil(size / per_rank) * samples_per_gpu for size in self.group_sizes
        )
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.epoch + self.seed)
        indices: list[int] = []
        per_rank = self.samples_per_gpu * self.num_replicas
        for group, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            members = np.where(self.flag == group)[0]
            members = members[torch.randperm(int(size), generator=g).numpy()].tolist()
            extra = math.ceil(size / per_rank) * per_rank - len(members)
            padded = list(members)
            for _ in range(extra // size):
                padded.extend(members)
            padded.extend(members[: extra % size])
            indices.extend(padded)
        n = self.samples_per_gpu
        batch_order = torch.randperm(len(indices) // n, generator=g).tolist()
        indices = [indices[j] for i in batch_order for j in range(i * n, (i + 1) * n)]
        offset = self.num_samples * self.rank
        return iter(indices[offset : offset + self.num_samples])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class DistributedSampler(_TorchDistributedSampler[int]):
    """PyTorch's ``DistributedSampler`` with the seed shared across ranks (v2)."""

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int | None = 0,
    ) -> None:
        _rank, _world = get_dist_info()
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=_world if num_replicas is None else num_replicas,
            rank=_rank if rank is None else rank,
            shuffle=shuffle,
            seed=sync_random_seed(seed) if seed is not None else 0,
        )


class _InfiniteBase(Sampler[list[int]]):
    def __init__(
        self,
        dataset: Sized,
        batch_size: int = 1,
        world_size: int | None = None,
        rank: int | None = None,
        seed: int | None = 0,
        shuffle: bool = True,
    ) -> None:
        _rank, _world = get_dist_info()
        self.rank = _rank if rank is None else rank
        self.world_size = _world if world_size is None else world_size
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = sync_random_seed(seed) if seed is not None else 0
        self.shuffle = shuffle
        self.size = len(dataset)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            if self.shuffle:
                yield from torch.randperm(self.size, generator=g).tolist()
            else:
                yield from range(self.size)

    def _indices_of_rank(self) -> Iterator[int]:
        return itertools.islice(self._infinite_indices(), self.rank, None, self.world_size)

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        raise NotImplementedError("infinite samplers have no epochs")


class InfiniteGroupBatchSampler(_InfiniteBase):
    """Endless batches, each from one aspect-ratio group (for ``IterBasedRunner``)."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        world_size: int | None = None,
        rank: int | None = None,
        seed: int | None = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__(dataset, batch_size, world_size, rank, seed, shuffle)
        self.flag = _flags(dataset)

    def __iter__(self) -> Iterator[list[int]]:
        buffers: dict[int, list[int]] = {int(k): [] for k in np.unique(self.flag)}
        for idx in self._indices_of_rank():
            buffer = buffers[int(self.flag[idx])]
            buffer.append(idx)
            if len(buffer) == self.batch_size:
                yield buffer[:]
                buffer.clear()


class InfiniteBatchSampler(_InfiniteBase):
    """Endless batches in dataset (or shuffled) order (for ``IterBasedRunner``)."""

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self._indices_of_rank():
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
