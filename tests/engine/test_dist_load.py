"""``load_from`` and ``resume`` under DDP with two gloo processes: the runner loads into the
model inside the wrapper, every rank ends with the checkpoint's weights, and the log line says
how many tensors were loaded."""

from __future__ import annotations

import logging
import pickle
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from detforge.engine.checkpoint_save import save_checkpoint
from detforge.engine.runner import EpochBasedRunner


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _worker(rank: int, port: int, out_dir: str, checkpoint: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        logger = logging.getLogger(f"dist_load.rank{rank}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = _Lines()
        logger.addHandler(handler)
        torch.manual_seed(100 + rank)
        model = nn.parallel.DistributedDataParallel(Tiny())
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        runner = EpochBasedRunner(
            model, optimizer=optimizer, work_dir=out_dir, logger=logger, max_epochs=2
        )
        runner.load_checkpoint(checkpoint)
        loaded = {k: v.clone() for k, v in model.module.state_dict().items()}
        with torch.no_grad():
            for param in model.parameters():
                param.zero_()
        runner.resume(checkpoint)
        resumed = {k: v.clone() for k, v in model.module.state_dict().items()}
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump(dict(loaded=loaded, resumed=resumed, log=handler.lines), f)
    finally:
        dist.destroy_process_group()


def test_load_from_and_resume_restore_weights_on_every_rank(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = Tiny()
    with torch.no_grad():
        source.bn.running_mean.uniform_()
        source.bn.running_var.uniform_(1, 2)
    checkpoint = tmp_path / "epoch_1.pth"
    save_checkpoint(source, checkpoint, meta=dict(epoch=1, iter=3, world_size=2))
    expected = source.state_dict()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path), str(checkpoint)), nprocs=2, join=True)
    for rank in (0, 1):
        got = pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes())
        for stage in ("loaded", "resumed"):
            assert got[stage].keys() == expected.keys()
            differ = [k for k in expected if not torch.equal(got[stage][k], expected[k])]
            assert not differ, f"rank {rank} after {stage}: {differ} differ from the checkpoint"
        log = "\n".join(got["log"])
        assert f"loaded {checkpoint} into Tiny: 7 of 7 tensors" in log, log
        assert f"resumed from {checkpoint}: weights (7 of 7 tensors), epoch=1, iter=3" in log, log
