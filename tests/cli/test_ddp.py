"""Distributed training and testing on CPU (gloo) through tools/dist_train.sh and
tools/dist_test.sh with two processes, and the SLURM scripts' srun command lines."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.cli.main import main
from tests.tiny_demo import demo_config_text, make_synthetic_coco

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
SCRIPTS = ["dist_train.sh", "dist_test.sh", "slurm_train.sh", "slurm_test.sh"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for key in ("MASTER_ADDR", "MASTER_PORT", "PORT"):  # dist_train.sh reads these
        env.pop(key, None)
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture
def ddp_config(tmp_path: Path) -> Path:
    paths = make_synthetic_coco(tmp_path / "data", num_train=6, num_val=5, size=32, seed=2)
    text = demo_config_text(paths["root"], max_epochs=2, samples_per_gpu=2, img_size=32)
    text = text.replace("score_thr=0.05", "score_thr=0.0")  # detections from an early model
    text += """
custom_imports = dict(imports=['tests.engine.run_hooks'], allow_failed_imports=False)
custom_hooks = [dict(type='NumClassCheckHook'), dict(type='RankRecordHook')]
evaluation = dict(interval=2, metric='bbox')
dist_params = dict(backend='nccl')  # v2 configs say nccl; CPU runs fall back to gloo
"""
    config = tmp_path / "tiny_ddp.py"
    config.write_text(text)
    return config


def _expected_files(config: Path, rank: int, epoch: int) -> list[str]:
    """The training images rank ``rank`` sees in ``epoch`` when DistSamplerSeedHook works."""
    from detforge.config import load_config
    from detforge.datasets.builder import build_dataset
    from detforge.datasets.samplers import DistributedGroupSampler

    dataset = build_dataset(load_config(config).cfg.data.train)
    sampler = DistributedGroupSampler(dataset, 2, num_replicas=2, rank=rank, seed=0)
    sampler.set_epoch(epoch)
    return [dataset.data_infos[i]["filename"] for i in sampler]


def test_dist_train_then_dist_test_on_cpu(ddp_config: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    out = _run(
        ["bash", str(TOOLS / "dist_train.sh"), str(ddp_config), "2", "--work-dir", str(work),
         "--device", "cpu"],
        _env(PORT=str(_free_port())),
        tmp_path,
    )  # fmt: skip
    assert "using 'gloo' on CPU" in out
    # as v2: only rank 0 prints the environment, the config and the log lines
    assert out.count("Environment info:") == 1 and out.count("Set random seed") == 1
    assert "`broadcast_buffers` is deprecated" not in out  # torch's FutureWarning, per rank
    params = [torch.load(work / f"rank{r}_params.pth", weights_only=True) for r in (0, 1)]
    saved = torch.load(work / "epoch_2.pth", weights_only=True)
    assert saved["meta"]["world_size"] == 2 and len(saved["meta"]["rng_ranks"]) == 2
    for name, value in params[0].items():
        assert torch.equal(value, params[1][name]), name
        assert torch.equal(value, saved["state_dict"][name]), name
    first = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]
    assert any(not torch.equal(first[k], v) for k, v in params[0].items())

    # DistSamplerSeedHook: each rank gets its shard of the epoch's own permutation
    seen = [json.loads((work / f"rank{r}_batches.json").read_text()) for r in (0, 1)]
    for epoch in (0, 1):
        for rank in (0, 1):
            assert seen[rank][str(epoch)] == _expected_files(ddp_config, rank, epoch)
        union = set(seen[0][str(epoch)]) | set(seen[1][str(epoch)])
        assert len(union) == 6
    assert seen[0]["0"] + seen[1]["0"] != seen[0]["1"] + seen[1]["1"]
    # DistEvalHook gathered the 5 validation images of both ranks on rank 0
    log = [json.loads(x) for x in next(work.glob("*.log.json")).read_text().splitlines()]
    assert any(line.get("mode") == "val" and "bbox_mAP" in line for line in log)

    options = ["--device", "cpu"]
    dist_out, tmpdir = tmp_path / "dist.pkl", tmp_path / "collect"
    _run(
        ["bash", str(TOOLS / "dist_test.sh"), str(ddp_config), str(work / "epoch_2.pth"), "2",
         "--out", str(dist_out), "--tmpdir", str(tmpdir), *options],
        _env(MASTER_PORT=str(_free_port())),
        tmp_path,
    )  # fmt: skip
    assert not tmpdir.exists()
    with pytest.raises(SystemExit, match="--show/--show-dir draw results in one process only"):
        main(["test", str(ddp_config), str(work / "epoch_2.pth"), "--show-dir", str(tmp_path),
              "--launcher", "pytorch"])  # fmt: skip
    single_out = tmp_path / "single.pkl"
    code = main(["test", str(ddp_config), str(work / "epoch_2.pth"), "--out", str(single_out),
                 *options])  # fmt: skip
    assert code == 0
    dist_results = pickle.loads(dist_out.read_bytes())
    single_results = pickle.loads(single_out.read_bytes())
    assert len(dist_results) == len(single_results) == 5
    for image, (got, want) in enumerate(zip(dist_results, single_results, strict=True)):
        assert len(got) == len(want) == 2
        for cls, (a, b) in enumerate(zip(got, want, strict=True)):
            assert a.shape == b.shape and len(a) > 0, (image, cls, a.shape, b.shape)
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"image {image} class {cls}")


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_and_need_arguments(script: str) -> None:
    subprocess.run(["bash", "-n", str(TOOLS / script)], check=True)
    proc = subprocess.run(["bash", str(TOOLS / script)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def _fake_srun(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir, record = tmp_path / "bin", tmp_path / "srun_args.txt"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {record}\n')
    srun.chmod(0o755)
    env = _env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return env, record


def test_slurm_scripts_build_the_srun_command(tmp_path: Path) -> None:
    env, record = _fake_srun(tmp_path)
    env.update(GPUS="16", GPUS_PER_NODE="8", CPUS_PER_TASK="3", SRUN_ARGS="--qos=low --time=5")
    subprocess.run(
        ["bash", str(TOOLS / "slurm_train.sh"), "part", "job1", "cfg.py", "work", "--seed", "3"],
        env=env, check=True,
    )  # fmt: skip
    args = record.read_text().splitlines()
    assert args[:9] == ["-p", "part", "--job-name=job1", "--gres=gpu:8", "--ntasks=16",
                        "--ntasks-per-node=8", "--cpus-per-task=3", "--kill-on-bad-exit=1",
                        "--qos=low"]  # fmt: skip
    assert args[9:] == ["--time=5", sys.executable, "-u", str(TOOLS / "train.py"), "cfg.py",
                        "--work-dir=work", "--launcher=slurm", "--seed", "3"]  # fmt: skip

    env.pop("SRUN_ARGS")
    env.update(GPUS="2")
    env.pop("GPUS_PER_NODE")
    subprocess.run(
        ["bash", str(TOOLS / "slurm_test.sh"), "part", "job2", "cfg.py", "model.pth", "--eval",
         "bbox"],
        env=env, check=True,
    )  # fmt: skip
    args = record.read_text().splitlines()
    assert "--gres=gpu:2" in args and "--ntasks=2" in args and "--ntasks-per-node=2" in args
    assert args[-6:] == [str(TOOLS / "test.py"), "cfg.py", "model.pth", "--launcher=slurm",
                         "--eval", "bbox"]  # fmt: skip
