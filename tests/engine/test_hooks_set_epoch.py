"""``SetEpochInfoHook``: the model learns the 0-based epoch before each training epoch (v2)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from detforge.engine.hooks import SetEpochInfoHook
from detforge.engine.runner import EpochBasedRunner, IterBasedRunner
from detforge.errors import ConfigError
from detforge.registry import HOOKS, build_module
from tests.engine.test_runner import make_loader


class EpochModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.epochs_seen: list[int] = []
        self.epoch_at_step: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def train_step(self, data: dict[str, Any], optimizer: Any = None) -> dict[str, Any]:
        self.epoch_at_step.append(self.epochs_seen[-1] if self.epochs_seen else -1)
        loss = self.fc(data["img"]).pow(2).mean()
        return dict(loss=loss, log_vars=dict(loss=loss.item()), num_samples=2)


class NoEpochModel(EpochModel):
    set_epoch = None  # type: ignore[assignment]


def _run(tmp_path: Any, model: nn.Module, cls: Any = EpochBasedRunner, **kw: Any) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    runner = cls(model, opt, work_dir=str(tmp_path), logger=logging.getLogger("t"), **kw)
    runner.register_training_hooks(None, dict(grad_clip=None))
    runner.register_hook(build_module(dict(type="SetEpochInfoHook"), HOOKS, path="custom_hooks"))
    runner.run([make_loader(2)], [("train", 1)])


def test_epoch_based_run_sets_each_epoch_before_its_iterations(tmp_path: Any) -> None:
    model = EpochModel()
    _run(tmp_path, model, max_epochs=3)
    assert model.epochs_seen == [0, 1, 2]
    assert model.epoch_at_step == [0, 0, 1, 1, 2, 2]


def test_data_parallel_wrapper_is_looked_through() -> None:
    inner = EpochModel()
    hook = SetEpochInfoHook()

    class FakeRunner:
        max_epochs = 5
        epoch = 4
        model = nn.DataParallel(inner)

    hook.before_train_epoch(FakeRunner())  # type: ignore[arg-type]
    assert inner.epochs_seen == [4]


def test_iteration_based_run_leaves_the_epoch_alone_as_v2(tmp_path: Any) -> None:
    model = EpochModel()
    _run(tmp_path, model, IterBasedRunner, max_iters=3)
    assert model.epochs_seen == []


def test_model_without_set_epoch_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="SetEpochInfoHook needs a model with set_epoch"):
        _run(tmp_path, NoEpochModel(), max_epochs=1)
