"""Exact resume through the real CLI: a run killed with SIGKILL and ``--auto-resume``d ends
with the very weights of an uninterrupted run (torch.equal on every tensor)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.cli.main import main
from tests.tiny_demo import demo_config_text, make_synthetic_coco

ROOT = Path(__file__).resolve().parents[2]
HOOKS = "dict(imports=['tests.engine.run_hooks'], allow_failed_imports=False)"


def _config(tmp_path: Path, max_epochs: int, extra: str = "") -> Path:
    paths = make_synthetic_coco(tmp_path / "data", num_train=6, num_val=2, size=32, seed=1)
    text = demo_config_text(paths["root"], max_epochs=max_epochs, samples_per_gpu=2, img_size=32)
    text += f"""
custom_imports = {HOOKS}
custom_hooks = [dict(type='NumClassCheckHook'), dict(type='StallHook', priority='LOWEST')]
evaluation = dict(interval=1, metric='bbox')
checkpoint_config = dict(interval=1, max_keep_ckpts=3)
log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook')])
{extra}"""
    config = tmp_path / "tiny.py"
    config.write_text(text)
    return config


def _train(config: Path, work_dir: Path, *extra: str, stall_at: int | None = None) -> Any:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("DETFORGE_TEST_STALL_AT_ITER", None)
    if stall_at is not None:
        env["DETFORGE_TEST_STALL_AT_ITER"] = str(stall_at)
    cmd = [sys.executable, "-m", "detforge.cli.main", "train", str(config),
           "--work-dir", str(work_dir), "--seed", "0", "--deterministic", "--device", "cpu",
           *extra]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _finish(proc: Any, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f"{len(differ)} of {len(sa)} tensors differ, e.g. {differ[:3]}"


def test_killed_run_auto_resumes_to_identical_weights(tmp_path: Path) -> None:
    """4 epochs of 3 iterations; run B is SIGKILLed mid-epoch 3 (after epoch_2.pth), then
    resumed twice: once as it was, once with its newest checkpoint truncated."""
    config = _config(tmp_path, max_epochs=4)
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full = _train(config, full_dir)
    killed = _train(config, killed_dir, stall_at=8)  # iteration 8 = mid-epoch 3
    deadline = time.monotonic() + 90
    newest = killed_dir / "epoch_2.pth"
    while os.path.realpath(killed_dir / "latest.pth") != str(newest.resolve()):
        assert killed.poll() is None, killed.communicate()[0].decode()[-3000:]
        assert time.monotonic() < deadline, "no epoch_2.pth after 90 s"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert not (killed_dir / "epoch_3.pth").exists()

    corrupt_dir = tmp_path / "corrupt"
    shutil.copytree(killed_dir, corrupt_dir, symlinks=True)
    torn = corrupt_dir / "epoch_2.pth"
    torn.write_bytes(torn.read_bytes()[:5000])  # a torn file (latest.pth links to it)

    resumed = _train(config, killed_dir, "--auto-resume")
    resumed_corrupt = _train(config, corrupt_dir, "--auto-resume")
    _finish(full)
    log = _finish(resumed)
    log_corrupt = _finish(resumed_corrupt)

    assert "resumed from" in log and "epoch=2, iter=6, optimizer, rng (torch, numpy" in log
    assert "epoch=1, iter=3, optimizer, rng" in log_corrupt
    assert f"cannot read checkpoint {corrupt_dir / 'latest.pth'} (truncated" in log_corrupt
    assert f"cannot read checkpoint {corrupt_dir / 'epoch_2.pth'} (truncated" in log_corrupt
    text_logs = sorted(killed_dir.glob("*.log"))
    assert len(text_logs) == 2 and "resumed from" in text_logs[-1].read_text()

    _assert_same_weights(full_dir / "epoch_4.pth", killed_dir / "epoch_4.pth")
    _assert_same_weights(full_dir / "epoch_4.pth", corrupt_dir / "epoch_4.pth")
    # the run did learn something: the weights moved on after epoch 2
    first, last = _state(full_dir / "epoch_2.pth"), _state(full_dir / "epoch_4.pth")
    assert any(not torch.equal(first[k], last[k]) for k in first)
    meta = torch.load(full_dir / "epoch_4.pth", weights_only=True)["meta"]
    assert (meta["epoch"], meta["iter"]) == (4, 12)
    assert set(meta["rng"]) >= {"python", "numpy", "torch"}


@pytest.fixture
def iter_config(tmp_path: Path) -> Path:
    return _config(
        tmp_path,
        max_epochs=1,
        extra="""runner = dict(type='IterBasedRunner', max_iters=9)
checkpoint_config = dict(interval=3, by_epoch=False)
lr_config = dict(policy='step', by_epoch=False, step=[5], warmup='linear', warmup_iters=4,
                 warmup_ratio=0.1)
""",
    )


def test_iter_based_resume_is_exact(iter_config: Path, tmp_path: Path, monkeypatch: Any) -> None:
    """IterBasedRunner: resuming from iter_6 (past one pass over the 6 images) continues the
    infinite sampler's stream, the numpy flips, the LR schedule and the optimizer exactly."""
    monkeypatch.chdir(tmp_path)
    common = ["--seed", "0", "--deterministic", "--device", "cpu", "--no-validate"]
    full_dir, resumed_dir = tmp_path / "iter_full", tmp_path / "iter_resumed"
    assert main(["train", str(iter_config), "--work-dir", str(full_dir), *common]) == 0
    ckpt = torch.load(full_dir / "iter_6.pth", weights_only=True)
    assert (ckpt["meta"]["iter"], ckpt["meta"]["data_position"]) == (6, 6)
    assert "optimizer" in ckpt and "initial_lr" in ckpt["optimizer"]["param_groups"][0]
    code = main(["train", str(iter_config), "--work-dir", str(resumed_dir),
                 "--resume-from", str(full_dir / "iter_6.pth"), *common])  # fmt: skip
    assert code == 0
    assert not (resumed_dir / "iter_3.pth").exists()
    _assert_same_weights(full_dir / "iter_9.pth", resumed_dir / "iter_9.pth")


def test_resume_rescales_iter_when_the_world_size_changed(tmp_path: Path, caplog: Any) -> None:
    """MMCV's rule: a checkpoint of 2 processes at iter 4 resumes a 1-process run at iter 8."""
    import logging

    from detforge.engine.checkpoint_save import save_checkpoint
    from detforge.engine.runner import EpochBasedRunner

    model = torch.nn.Linear(2, 1)
    path = tmp_path / "epoch_1.pth"
    save_checkpoint(model, path, meta=dict(epoch=1, iter=4, world_size=2))
    runner = EpochBasedRunner(model, work_dir=str(tmp_path), max_epochs=2)
    with caplog.at_level(logging.INFO, logger="detforge"):
        runner.resume(str(path))
    assert (runner.epoch, runner.iter) == (1, 8)
    assert "saved by 2 processes, this run has 1: iter 4 -> 8" in caplog.text
    assert "weights (2 of 2 tensors), epoch=1, iter=8" in caplog.text
