"""Distributed helpers on ``torch.distributed``: joining the process group that ``torchrun``
or SLURM set up, rank/world-size queries and a seed shared by every rank.

``--launcher pytorch`` reads the variables ``torchrun`` exports (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); no ``--local_rank`` argument is needed.
``--launcher slurm`` derives them from ``SLURM_PROCID``, ``SLURM_NTASKS``,
``SLURM_NODELIST`` (and ``SLURM_LOCALID`` when present) as MMCV does. The backend is
``nccl`` on CUDA and ``gloo`` on CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Mapping

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "get_dist_info",
    "init_dist",
    "leave_process_group",
    "reduce_mean",
    "slurm_environ",
    "slurm_first_host",
    "sync_random_seed",
    "unwrap_model",
]

_REQUIRED = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_WRAPPERS: tuple[type[torch.nn.Module], ...] = (
    torch.nn.DataParallel,
    torch.nn.parallel.DistributedDataParallel,
)


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when not running distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DataParallel/DistributedDataParallel wrappers (``model`` itself if it is
    not wrapped), as MMCV's ``is_module_wrapper`` checks see it.

    Example:
        >>> inner = torch.nn.Linear(2, 1)
        >>> unwrap_model(torch.nn.DataParallel(inner)) is inner
        True
    """
    while isinstance(model, _WRAPPERS):
        inner = model.module
        assert isinstance(inner, torch.nn.Module)
        model = inner
    return model


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


def _expand_range(prefix: str, body: str) -> str:
    """The first host of ``prefix[body]`` where body is ``01-03,07``."""
    first = body.split(",")[0].split("-")[0]
    return f"{prefix}{first}"


def slurm_first_host(nodelist: str, use_scontrol: bool = True) -> str:
    """The first host name of a SLURM node list such as ``gpu[03-05,9],cpu1``.

    ``scontrol show hostnames`` answers when it is installed (and ``use_scontrol``);
    otherwise the list is parsed (comma-separated names, each optionally followed by one
    bracketed range list).

    Example:
        >>> slurm_first_host('node[017-020,25],login1', use_scontrol=False)
        'node017'
        >>> slurm_first_host('host-a,host-b', use_scontrol=False)
        'host-a'
    """
    nodelist = nodelist.strip()
    if not nodelist:
        raise ValueError("SLURM_NODELIST is empty")
    if use_scontrol and shutil.which("scontrol"):
        result = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist],
            capture_output=True,
            text=True,
            check=False,
        )
        hosts = result.stdout.split()
        if result.returncode == 0 and hosts:
            return hosts[0]
    match = re.match(r"^([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if match is None:
        raise ValueError(f"cannot parse SLURM_NODELIST {nodelist!r}")
    prefix, body = match.group(1), match.group(2)
    return _expand_range(prefix, body) if body else prefix


def slurm_environ(
    environ: Mapping[str, str],
    port: int | None = None,
    num_gpus: int | None = None,
    use_scontrol: bool = True,
) -> dict[str, str]:
    """The ``torch.distributed`` variables for a process started by ``srun``.

    Args:
        environ: The process environment (``SLURM_PROCID``, ``SLURM_NTASKS``,
            ``SLURM_NODELIST``; ``SLURM_LOCALID``, ``MASTER_PORT``/``PORT`` and
            ``MASTER_ADDR`` are used when set).
        port: The master port (``dist_params.port``); default ``MASTER_PORT``, else
            ``PORT``, else 29500.
        num_gpus: GPUs per node (local rank = ``SLURM_PROCID % num_gpus`` when
            ``SLURM_LOCALID`` is absent); default: the visible CUDA devices, at least 1.
        use_scontrol: Ask ``scontrol`` for the first host when it is installed.

    Returns:
        ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``.

    Raises:
        KeyError: a required SLURM variable is missing (the message names it).

    Example:
        >>> env = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_NODELIST='gpu[10-11]')
        >>> out = slurm_environ(env, num_gpus=4, use_scontrol=False)
        >>> out['RANK'], out['WORLD_SIZE'], out['LOCAL_RANK'], out['MASTER_ADDR']
        ('5', '8', '1', 'gpu10')
        >>> out['MASTER_PORT']
        '29500'
    """
    missing = [k for k in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST") if k not in environ]
    if missing:
        raise KeyError(
            f"--launcher slurm: environment variable(s) {', '.join(missing)} not set; "
            "start the job with srun (tools/slurm_train.sh)"
        )
    proc_id = int(environ["SLURM_PROCID"])
    ntasks = int(environ["SLURM_NTASKS"])
    if num_gpus is None:
        num_gpus = max(torch.cuda.device_count(), 1)
    local_rank = environ.get("SLURM_LOCALID", str(proc_id % num_gpus))
    if port is None:
        port = int(environ.get("MASTER_PORT") or environ.get("PORT") or 29500)
    addr = environ.get("MASTER_ADDR") or slurm_first_host(
        environ["SLURM_NODELIST"], use_scontrol=use_scontrol
    )
    return dict(
        RANK=str(proc_id),
        WORLD_SIZE=str(ntasks),
        LOCAL_RANK=str(local_rank),
        MASTER_ADDR=addr,
        MASTER_PORT=str(port),
    )


def init_dist(
    launcher: str,
    backend: str | None = None,
    device: str | None = None,
    port: int | None = None,
) -> None:
    """Join the process group of a ``torchrun`` (``pytorch``) or ``srun`` (``slurm``) job.

    With ``slurm`` the derived ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` are written into ``os.environ``, where ``torch.distributed`` reads them.

    Args:
        launcher: ``'pytorch'`` or ``'slurm'``.
        backend: ``dist_params.backend``; default ``nccl`` on CUDA, ``gloo`` on CPU. A config's
            ``nccl`` on a CPU run becomes ``gloo`` (with a warning).
        device: ``'cuda'`` or ``'cpu'`` (default: CUDA when available).
        port: ``dist_params.port`` for SLURM.

    Raises:
        ValueError: unknown launcher.
        RuntimeError: a variable the launcher should have set is missing.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if launcher == "slurm":
        num_gpus = max(torch.cuda.device_count(), 1) if device == "cuda" else 1
        os.environ.update(slurm_environ(os.environ, port=port, num_gpus=num_gpus))
    elif launcher != "pytorch":
        raise ValueError(f"--launcher must be none, pytorch or slurm, got {launcher!r}")
    missing = [key for key in _REQUIRED if key not in os.environ]
    if missing:
        raise RuntimeError(
            f"--launcher {launcher}: environment variable(s) {', '.join(missing)} not set; "
            "start the job with torchrun (tools/dist_train.sh) or srun (tools/slurm_train.sh)"
        )
    if backend is None:
        backend = "nccl" if device == "cuda" else "gloo"
    elif backend == "nccl" and device != "cuda":
        warnings.warn("dist_params.backend='nccl' needs CUDA; using 'gloo' on CPU", stacklevel=2)
        backend = "gloo"
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend)


def leave_process_group() -> None:
    """Destroy the default process group, if one was joined (end of a distributed command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over the distributed ranks (``tensor`` itself when not distributed).

    Example:
        >>> reduce_mean(torch.tensor(4.0))
        tensor(4.)
    """
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    out = tensor.clone()
    dist.all_reduce(out.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return out
