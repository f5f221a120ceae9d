"""TensorboardLoggerHook: event files written from log_config.hooks, read back."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import pytest
import torch
from torch import nn

from detforge.engine.hooks import EvalHook, TensorboardLoggerHook
from detforge.engine.runner import EpochBasedRunner
from tests.engine.test_hooks import EvalLoader, FakeDataset
from tests.engine.test_runner import make_loader

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


class TwoLossModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def train_step(self, data: dict[str, Any], optimizer: Any = None) -> dict[str, Any]:
        err = self.fc(data["img"]) - data["target"]
        loss_cls, loss_bbox = (err**2).mean(), err.abs().mean()
        loss = loss_cls + loss_bbox
        log_vars = dict(loss_cls=loss_cls.item(), loss_bbox=loss_bbox.item(), loss=loss.item())
        return dict(loss=loss, log_vars=log_vars, num_samples=2)


def _runner(tmp_path: Any) -> EpochBasedRunner:
    torch.manual_seed(0)
    model = TwoLossModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return EpochBasedRunner(
        model, opt, work_dir=str(tmp_path), logger=logging.getLogger("t"), meta={}, max_epochs=2
    )


def test_scalars_and_steps_read_back(tmp_path: Any) -> None:
    runner = _runner(tmp_path)
    log_config = dict(
        interval=2, hooks=[dict(type="TextLoggerHook"), dict(type="TensorboardLoggerHook")]
    )
    runner.register_training_hooks(
        dict(policy="step", step=[1], gamma=0.5), dict(grad_clip=None), log_config=log_config
    )
    loader = EvalLoader([1])
    loader.dataset = FakeDataset([0.25, 0.5])
    runner.register_hook(EvalHook(loader, test_fn=lambda m, dl: list(dl)), "LOW")
    runner.run([make_loader(4)], [("train", 1)])

    (event_dir,) = {p.parent for p in (tmp_path / "tf_logs").glob("events.out.tfevents.*")}
    acc = event_accumulator.EventAccumulator(str(event_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {"learning_rate", "momentum", "train/loss_cls", "train/loss_bbox", "train/loss",
                "train/time", "train/data_time", "val/bbox_mAP", "val/bbox_mAP_50"}  # fmt: skip
    assert expected <= tags, tags
    # 4 iterations per epoch, interval 2: global steps 2, 4 (epoch 1), 6, 8 (epoch 2)
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4, 6, 8]
    # lr and momentum go with every line, the val lines (steps 5 and 9) included
    lr = acc.Scalars("learning_rate")
    assert [e.step for e in lr] == [2, 4, 5, 6, 8, 9]
    assert [e.value for e in lr] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05])
    assert [e.value for e in acc.Scalars("momentum")] == pytest.approx([0.9] * 6)
    val = acc.Scalars("val/bbox_mAP")
    assert [(e.step, round(e.value, 6)) for e in val] == [(5, 0.25), (9, 0.5)]
    assert all(e.value > 0 for e in acc.Scalars("train/time"))


def test_missing_tensorboard_says_how_to_install(tmp_path: Any, monkeypatch: Any) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    runner = _runner(tmp_path)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        TensorboardLoggerHook().before_run(runner)
