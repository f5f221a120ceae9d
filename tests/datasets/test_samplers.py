"""Samplers: aspect-ratio grouping, padding to whole batches, rank shards, infinite batches."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.datasets.samplers import (
    DistributedGroupSampler,
    DistributedSampler,
    GroupSampler,
    InfiniteBatchSampler,
    InfiniteGroupBatchSampler,
)


class FlagDataset:
    def __init__(self, flags: list[int]) -> None:
        self.flag = np.array(flags, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.flag)


FLAGS = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]  # 3 portrait, 7 landscape


def test_group_sampler_batches_hold_one_orientation() -> None:
    ds = FlagDataset(FLAGS)
    np.random.seed(0)
    sampler = GroupSampler(ds, samples_per_gpu=2)
    # groups padded to whole batches: 3 -> 4 and 7 -> 8
    assert len(sampler) == 12
    indices = list(sampler)
    assert len(indices) == 12
    for i in range(0, 12, 2):
        assert ds.flag[indices[i]] == ds.flag[indices[i + 1]]
    assert set(indices) == set(range(10))


def test_group_sampler_is_reproducible_with_numpy_seed() -> None:
    ds = FlagDataset(FLAGS)
    np.random.seed(3)
    first = list(GroupSampler(ds, 2))
    np.random.seed(3)
    assert list(GroupSampler(ds, 2)) == first


def test_distributed_group_sampler_shards_cover_the_dataset() -> None:
    ds = FlagDataset(FLAGS)
    shards = [
        list(DistributedGroupSampler(ds, samples_per_gpu=2, num_replicas=2, rank=r, seed=7))
        for r in range(2)
    ]
    # per group: ceil(n / (2 * 2)) * 2 per rank -> 3: 2, 7: 4 -> 6 per rank
    assert [len(s) for s in shards] == [6, 6]
    assert set(shards[0]) | set(shards[1]) == set(range(10))
    for shard in shards:
        for i in range(0, len(shard), 2):
            assert ds.flag[shard[i]] == ds.flag[shard[i + 1]]
    sampler = DistributedGroupSampler(ds, 2, num_replicas=2, rank=0, seed=7)
    sampler.set_epoch(1)
    assert list(sampler) != shards[0]  # a new permutation every epoch ...
    sampler.set_epoch(0)
    assert list(sampler) == shards[0]  # ... and the same one for the same epoch and seed


def test_distributed_sampler_without_shuffle_is_strided() -> None:
    ds = FlagDataset(FLAGS)
    assert list(DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)) == [1, 3, 5, 7, 9]


def test_infinite_group_batch_sampler() -> None:
    ds = FlagDataset(FLAGS)
    it = iter(InfiniteGroupBatchSampler(ds, batch_size=3, world_size=1, rank=0, seed=1))
    batches = [next(it) for _ in range(10)]  # more than one pass over the data
    for batch in batches:
        assert len(batch) == 3
        assert len({int(ds.flag[i]) for i in batch}) == 1
    with pytest.raises(NotImplementedError):
        InfiniteGroupBatchSampler(ds).set_epoch(1)


def test_infinite_batch_sampler_in_order_per_rank() -> None:
    ds = FlagDataset(FLAGS)
    it = iter(InfiniteBatchSampler(ds, batch_size=4, world_size=2, rank=1, shuffle=False))
    assert next(it) == [1, 3, 5, 7]
    assert next(it) == [9, 1, 3, 5]


def test_missing_flag_is_a_clear_error() -> None:
    with pytest.raises(AttributeError, match="flag"):
        GroupSampler(object(), 2)
