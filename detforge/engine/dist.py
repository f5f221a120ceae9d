"""Distributed helpers on ``torch.distributed`` (launched by ``torchrun`` or SLURM)."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["get_dist_info", "sync_random_seed"]


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when not running distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sync_random_seed(seed: int | None = None) -> int:
    """One seed for every rank: rank 0's (drawn at random when ``seed`` is None) is broadcast.

    Samplers that shuffle with it give every rank the same permutation, so the ranks' shards
    do not overlap.
    """
    if seed is None:
        seed = int(np.random.randint(2**31))
    rank, world_size = get_dist_info()
    if world_size == 1:
        return seed
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor(seed if rank == 0 else 0, dtype=torch.int64, device=device)
    dist.broadcast(value, src=0)
    return int(value.item())
