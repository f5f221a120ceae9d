"""Runner loops, hook order, checkpoints and resume on a tiny fake model."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from detforge.engine.hooks import Hook
from detforge.engine.runner import EpochBasedRunner, IterBasedRunner, build_runner


class FakeModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def train_step(self, data: dict[str, Any], optimizer: Any = None) -> dict[str, Any]:
        loss = ((self.fc(data["img"]) - data["target"]) ** 2).mean()
        return dict(loss=loss, log_vars=dict(loss=loss.item()), num_samples=len(data["img"]))


def make_loader(n: int = 4) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(0)
    return [
        dict(
            img=torch.randn(2, 2, generator=g),
            target=torch.randn(2, 1, generator=g),
            img_metas=[dict(filename=f"{i}.jpg")] * 2,
        )
        for i in range(n)
    ]


def make_runner(tmp_path: Any, cls: Any = EpochBasedRunner, **kw: Any) -> Any:
    torch.manual_seed(0)
    model = FakeModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return cls(model, opt, work_dir=str(tmp_path), logger=logging.getLogger("t"), meta={}, **kw)


class Recorder(Hook):
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def before_train_iter(self, runner: Any) -> None:
        self.calls.append(self.name)


def test_epoch_runner_counts(tmp_path: Any) -> None:
    r = make_runner(tmp_path, max_epochs=3)
    r.register_training_hooks(None, dict(grad_clip=None))
    r.run([make_loader(4)], [("train", 1)])
    assert (r.epoch, r.iter, r.max_iters) == (3, 12, 12)


def test_iter_runner_counts(tmp_path: Any) -> None:
    r = make_runner(tmp_path, IterBasedRunner, max_iters=10)
    r.register_training_hooks(None, dict(grad_clip=None))
    r.run([make_loader(4)], [("train", 1)])
    assert (r.iter, r.epoch) == (10, 2)


def test_train_val_workflow(tmp_path: Any) -> None:
    r = make_runner(tmp_path, max_epochs=2)
    r.register_training_hooks(None, dict(grad_clip=None))
    r.run([make_loader(4), make_loader(2)], [("train", 1), ("val", 1)])
    assert (r.epoch, r.iter, r.mode) == (2, 8, "val")


def test_hooks_called_in_priority_order(tmp_path: Any) -> None:
    calls: list[str] = []
    r = make_runner(tmp_path, max_epochs=1)
    r.register_hook(Recorder("low", calls), "LOW")
    r.register_hook(Recorder("normal1", calls))
    r.register_hook(Recorder("high", calls), 10)
    r.register_hook(Recorder("normal2", calls), "NORMAL")
    r.run([make_loader(1)], [("train", 1)])
    assert calls == ["high", "normal1", "normal2", "low"]
    assert "before_train_iter:" in r.get_hook_info()


def test_build_runner_rejects_unknown() -> None:
    with pytest.raises(Exception, match="unknown runner"):
        build_runner(dict(type="Nope"), dict(model=FakeModel()))
    r = build_runner(dict(type="EpochBasedRunner", max_epochs=2), dict(model=FakeModel()))
    assert r.max_epochs == 2


def _train(tmp_path: Any, epochs: int, resume: str | None = None) -> Any:
    r = make_runner(tmp_path, max_epochs=epochs)
    r.register_training_hooks(
        dict(policy="step", step=[2]), dict(grad_clip=None), dict(interval=1, max_keep_ckpts=2)
    )
    if resume:
        r.resume(resume)
    r.run([make_loader(4)], [("train", 1)])
    return r


def test_checkpoints_and_max_keep(tmp_path: Any) -> None:
    _train(tmp_path, 3)
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pth")
    assert names == ["epoch_2.pth", "epoch_3.pth", "latest.pth"]
    ckpt = torch.load(tmp_path / "latest.pth", weights_only=True)
    assert ckpt["meta"]["epoch"] == 3 and ckpt["meta"]["iter"] == 12
    assert "optimizer" in ckpt and "fc.weight" in ckpt["state_dict"]


def test_resume_matches_uninterrupted(tmp_path: Any) -> None:
    full = _train(tmp_path / "a", 3)
    _train(tmp_path / "b", 3)  # same run, to have its epoch_2 checkpoint
    resumed = _train(tmp_path / "c", 3, resume=str(tmp_path / "b" / "epoch_2.pth"))
    assert (resumed.epoch, resumed.iter) == (3, 12)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_mid_run_iter_runner(tmp_path: Any) -> None:
    def run(work: Any, resume: str | None = None) -> Any:
        r = make_runner(work, IterBasedRunner, max_iters=10)
        r.register_training_hooks(
            dict(policy="step", step=[5], by_epoch=False),
            dict(grad_clip=None),
            dict(interval=3, by_epoch=False),
        )
        if resume:
            r.resume(resume)
        r.run([make_loader(4)], [("train", 1)])
        return r

    full = run(tmp_path / "a")
    resumed = run(tmp_path / "b", resume=str(tmp_path / "a" / "iter_6.pth"))
    assert resumed.iter == 10
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
