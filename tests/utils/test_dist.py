"""Launcher environments: SLURM variables to torch.distributed's, and init_dist's checks."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch.distributed as dist

from detforge.utils.dist import get_dist_info, init_dist, slurm_environ, slurm_first_host

KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
SLURM_KEYS = ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST", "SLURM_LOCALID", "PORT")


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [
        ("node[017-020,25]", "node017"),
        ("gpu-a100-[3,5-7],cpu1", "gpu-a100-3"),
        ("host-a,host-b", "host-a"),
        ("single", "single"),
    ],
)
def test_first_host_parsed(nodelist: str, first: str) -> None:
    assert slurm_first_host(nodelist, use_scontrol=False) == first


def test_first_host_asks_scontrol(tmp_path: Path, monkeypatch: Any) -> None:
    scontrol = tmp_path / "scontrol"
    scontrol.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "n7\\nn8\\n"\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert slurm_first_host("whatever[7-8]") == "n7"
    assert slurm_first_host("whatever[7-8]", use_scontrol=False) == "whatever7"


def test_slurm_environ() -> None:
    env = dict(SLURM_PROCID="13", SLURM_NTASKS="16", SLURM_NODELIST="gpu[4-5]")
    got = slurm_environ(env, num_gpus=8, use_scontrol=False)
    assert got == dict(RANK="13", WORLD_SIZE="16", LOCAL_RANK="5", MASTER_ADDR="gpu4",
                       MASTER_PORT="29500")  # fmt: skip
    env.update(SLURM_LOCALID="2", PORT="12345")
    got = slurm_environ(env, num_gpus=8, use_scontrol=False)
    assert (got["LOCAL_RANK"], got["MASTER_PORT"]) == ("2", "12345")
    env.update(MASTER_PORT="23456", MASTER_ADDR="10.0.0.1")
    got = slurm_environ(env, num_gpus=8, use_scontrol=False)
    assert (got["MASTER_PORT"], got["MASTER_ADDR"]) == ("23456", "10.0.0.1")
    assert slurm_environ(env, port=3000, num_gpus=8)["MASTER_PORT"] == "3000"
    with pytest.raises(KeyError, match="SLURM_NTASKS, SLURM_NODELIST"):
        slurm_environ(dict(SLURM_PROCID="0"))


def _unset(mp: pytest.MonkeyPatch, *keys: str) -> None:
    """Remove ``keys`` from ``os.environ`` so that undoing ``mp`` restores them (or their
    absence): ``delenv`` of an absent key records nothing, ``setenv`` always does."""
    for key in keys:
        mp.setenv(key, "placeholder")
        mp.delenv(key)


def test_init_dist_checks_the_launcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="mpi"):
        init_dist("mpi", device="cpu")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    _unset(monkeypatch, "MASTER_ADDR", "MASTER_PORT")
    with pytest.raises(RuntimeError, match="MASTER_ADDR, MASTER_PORT not set"):
        init_dist("pytorch", device="cpu")


def test_init_dist_slurm_joins_a_one_process_group() -> None:
    before = {key: os.environ.get(key) for key in (*KEYS, *SLURM_KEYS)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.MonkeyPatch.context() as mp:
        _unset(mp, "SLURM_LOCALID", "PORT")
        for key, value in dict(RANK="7", WORLD_SIZE="9", LOCAL_RANK="3").items():
            mp.setenv(key, value)  # stale values: init_dist must replace them
        for key, value in dict(SLURM_PROCID="0", SLURM_NTASKS="1", SLURM_NODELIST="localhost",
                               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)).items():  # fmt: skip
            mp.setenv(key, value)
        with pytest.warns(UserWarning, match="gloo"):
            init_dist("slurm", backend="nccl", device="cpu")
        try:
            assert get_dist_info() == (0, 1)
            assert dist.get_backend() == "gloo"
            got = {key: os.environ[key] for key in KEYS}
            assert got == dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0",
                               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
        finally:
            dist.destroy_process_group()
    assert get_dist_info() == (0, 1)
    # nothing init_dist wrote outlives the test
    assert {key: os.environ.get(key) for key in (*KEYS, *SLURM_KEYS)} == before
