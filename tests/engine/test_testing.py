"""multi_gpu_test: two gloo processes gather their shards on rank 0 in dataset order, through
all_gather and through a --tmpdir folder, for an odd dataset size (the last shard padded)."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from detforge.datasets.builder import build_dataloader
from detforge.engine.testing import merge_parts, multi_gpu_test

SIZE = 5


class IndexDataset(Dataset[dict[str, Any]]):
    def __len__(self) -> int:
        return SIZE

    def __getitem__(self, i: int) -> dict[str, Any]:
        return dict(img=torch.full((3, 4, 4), float(i)), img_metas=dict(index=i))


class EchoDetector(nn.Module):
    """One class; one box per image whose coordinates are the image index."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, img: list[torch.Tensor], img_metas: list[Any], **kwargs: Any) -> list[Any]:
        assert kwargs["return_loss"] is False
        return [[np.full((1, 5), meta["index"], np.float32)] for meta in img_metas[0]]


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        loader = build_dataloader(IndexDataset(), 2, 0, dist=True, shuffle=False)
        got = {
            "gather": multi_gpu_test(EchoDetector(), loader, gpu_collect=True),
            "default": multi_gpu_test(EchoDetector(), loader),
            "tmpdir": multi_gpu_test(EchoDetector(), loader, tmpdir=f"{out_dir}/parts"),
        }
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump(got, f)
    finally:
        dist.destroy_process_group()


def test_both_collections_give_dataset_order(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    rank0 = pickle.loads((tmp_path / "rank0.pkl").read_bytes())
    rank1 = pickle.loads((tmp_path / "rank1.pkl").read_bytes())
    for mode in ("gather", "default", "tmpdir"):
        assert rank1[mode] is None, mode
        indices = [int(result[0][0, 0]) for result in rank0[mode]]
        assert indices == list(range(SIZE)), mode
    assert not (tmp_path / "parts").exists()


def test_merge_parts_checks_lengths() -> None:
    assert merge_parts([[0, 2, 4], [1, 3, 0]], 5) == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match=r"\[2, 1\]"):
        merge_parts([[0, 2], [1]], 3)
