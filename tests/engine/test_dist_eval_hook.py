"""DistEvalHook with two gloo processes: rank 0's BatchNorm statistics reach rank 1 before
testing (broadcast_bn_buffer), the default test_fn (multi_gpu_test with tmpdir/gpu_collect)
gathers every image on rank 0 in dataset order, and only rank 0 evaluates."""

from __future__ import annotations

import logging
import pickle
import socket
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from detforge.datasets.builder import build_dataloader
from detforge.engine.hooks import DistEvalHook, LogBuffer
from detforge.engine.testing import multi_gpu_test

SIZE = 5


class IndexDataset(Dataset[dict[str, Any]]):
    CLASSES = ("thing",)

    def __init__(self) -> None:
        self.evaluated: list[list[tuple[float, float]]] = []

    def __len__(self) -> int:
        return SIZE

    def __getitem__(self, i: int) -> dict[str, Any]:
        return dict(img=torch.full((3, 4, 4), float(i)), img_metas=dict(index=i))

    def evaluate(self, results: list[Any], logger: Any = None, metric: str = "bbox") -> dict:
        self.evaluated.append([(float(r[0][0, 0]), float(r[0][0, 1])) for r in results])
        return {"bbox_mAP": float(len(results))}


class StatsDetector(nn.Module):
    """One box per image: (image index, the BN running mean it was tested with, ...)."""

    def __init__(self, mean: float) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.bn.running_mean.fill_(mean)
        self.bn.running_var.fill_(mean + 1)

    def forward(self, img: list[torch.Tensor], img_metas: list[Any], **kwargs: Any) -> list[Any]:
        assert kwargs["return_loss"] is False
        mean = float(self.bn.running_mean[0])
        return [[np.array([[m["index"], mean, 0, 0, 1]], np.float32)] for m in img_metas[0]]


def _evaluate(rank: int, tmp: str, **hook_args: Any) -> dict[str, Any]:
    dataset = IndexDataset()
    loader = build_dataloader(dataset, 2, 0, dist=True, shuffle=False)
    model = StatsDetector(mean=10.0 * (rank + 1))
    hook = DistEvalHook(loader, interval=1, val_loss=False, **hook_args)
    runner = SimpleNamespace(
        model=model, log_buffer=LogBuffer(), logger=logging.getLogger("t"), meta=None,
        work_dir=tmp, data_loader=None, epoch=0, iter=0,
    )  # fmt: skip
    hook.after_train_epoch(runner)
    assert isinstance(hook.test_fn, partial) and hook.test_fn.func is multi_gpu_test
    return dict(
        keywords=dict(hook.test_fn.keywords) if isinstance(hook.test_fn, partial) else None,
        running=(float(model.bn.running_mean[0]), float(model.bn.running_var[0])),
        evaluated=dataset.evaluated,
        output=dict(runner.log_buffer.output),
        training=model.training,
    )


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        got = {
            "broadcast": _evaluate(rank, out_dir, tmpdir=f"{out_dir}/parts"),
            "own_stats": _evaluate(rank, out_dir, gpu_collect=True, broadcast_bn_buffer=False),
        }
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump(got, f)
    finally:
        dist.destroy_process_group()


def test_dist_eval_hook_broadcasts_bn_and_gathers_on_rank0(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in (0, 1))

    on, off = rank0["broadcast"], rank0["own_stats"]
    assert on["keywords"] == dict(tmpdir=str(tmp_path / "parts"), gpu_collect=False)
    assert off["keywords"] == dict(tmpdir=None, gpu_collect=True)
    # rank 0 evaluated once, every image in dataset order; rank 1 tested images 1 and 3 with
    # rank 0's BN statistics only when broadcast_bn_buffer is on
    assert on["evaluated"] == [[(0, 10), (1, 10), (2, 10), (3, 10), (4, 10)]]
    assert off["evaluated"] == [[(0, 10), (1, 20), (2, 10), (3, 20), (4, 10)]]
    assert on["output"] == {"bbox_mAP": 5.0} and on["training"]
    assert not (tmp_path / "parts").exists()
    assert rank1["broadcast"]["running"] == (10.0, 11.0)
    assert rank1["own_stats"]["running"] == (20.0, 21.0)
    assert rank0["broadcast"]["running"] == (10.0, 11.0)
    # rank 1 evaluated nothing and logged nothing
    for mode in ("broadcast", "own_stats"):
        assert rank1[mode]["evaluated"] == [] and rank1[mode]["output"] == {}
