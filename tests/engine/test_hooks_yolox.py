"""The hooks of YOLOX's configs (EMA, mode switch, norm sync) and the ``'YOLOX'`` lr policy,
against v2's formulas on literal numbers."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from detforge.engine.hooks import (
    EMAHook,
    ExpMomentumEMAHook,
    LinearMomentumEMAHook,
    SyncNormHook,
    YOLOXModeSwitchHook,
)
from detforge.engine.lr import build_lr_schedule, lr_at
from detforge.errors import ConfigError


def _runner(model: nn.Module, **kwargs: Any) -> Any:
    return SimpleNamespace(model=model, iter=0, epoch=0, logger=logging.getLogger("t"), **kwargs)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))


def test_exp_momentum_ema_averages_the_state_dict_every_interval() -> None:
    model = _model()
    runner = _runner(model)
    hook = ExpMomentumEMAHook(momentum=0.0001, interval=2, total_iter=10)
    hook.before_run(runner)
    state = model.state_dict()
    assert sorted(k for k in state if k.startswith("ema_")) == [
        "ema_0_bias", "ema_0_weight", "ema_1_bias", "ema_1_num_batches_tracked",
        "ema_1_running_mean", "ema_1_running_var", "ema_1_weight",
    ]  # fmt: skip
    old = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(2.0)
        model[1].num_batches_tracked.fill_(5)
    hook.after_train_iter(runner)  # iter 0: (0 + 1) % 2 != 0, no update
    torch.testing.assert_close(model.ema_0_weight, old)
    runner.iter = 1
    hook.after_train_iter(runner)
    m = (1 - 0.0001) * math.exp(-2 / 10) + 0.0001
    torch.testing.assert_close(model.ema_0_weight, (1 - m) * old + m * (old + 1))
    torch.testing.assert_close(model.ema_1_running_mean, torch.full((2,), 2 * m))
    assert int(model.ema_1_num_batches_tracked) == 0  # integers are not averaged
    hook.after_train_epoch(runner)  # the averages go into the model, the raw values aside
    torch.testing.assert_close(model[0].weight.detach(), (1 - m) * old + m * (old + 1))
    torch.testing.assert_close(model.ema_0_weight, old + 1)
    assert int(model[1].num_batches_tracked) == 0 and int(model.ema_1_num_batches_tracked) == 5
    hook.before_train_epoch(runner)
    torch.testing.assert_close(model[0].weight.detach(), old + 1)


def test_mmcv_ema_averages_parameters_from_iteration_zero_and_resumes_after_registering() -> None:
    model = _model()
    seen: list[bool] = []
    runner = _runner(model, resume=lambda path: seen.append(hasattr(model, "ema_0_weight")))
    hook = EMAHook(momentum=0.5, interval=2, warm_up=3, resume_from="ckpt.pth")
    hook.before_run(runner)
    assert seen == [True]
    assert not hasattr(model, "ema_1_running_mean")  # parameters only
    old = model[0].bias.detach().clone()
    with torch.no_grad():
        model[0].bias.add_(1.0)
    hook.after_train_iter(runner)  # iter 0 updates: m = min(0.5, 1 / 3)
    torch.testing.assert_close(model.ema_0_bias, old + 1 / 3)
    linear = LinearMomentumEMAHook(momentum=0.5, interval=2, warm_up=3)
    assert linear._momentum(0) == pytest.approx(0.25)  # min(0.5 ** 2, 1 / 3)
    with pytest.raises(ValueError, match="momentum"):
        ExpMomentumEMAHook(momentum=1.0)


def test_mode_switch_happens_before_epoch_max_minus_last_minus_one() -> None:
    skipped: list[list[str]] = []
    dataset = SimpleNamespace(update_skip_type_keys=skipped.append)
    model = nn.Module()
    model.bbox_head = nn.Module()
    model.bbox_head.use_l1 = False
    runner = _runner(model, max_epochs=10, data_loader=SimpleNamespace(dataset=dataset))
    hook = YOLOXModeSwitchHook(num_last_epochs=3)
    for epoch in range(6):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
    assert skipped == [] and model.bbox_head.use_l1 is False
    runner.epoch = 6
    hook.before_train_epoch(runner)
    assert skipped == [["Mosaic", "RandomAffine", "MixUp"]] and model.bbox_head.use_l1 is True
    runner.epoch = 7
    hook.before_train_epoch(runner)
    assert len(skipped) == 1  # once
    model.bbox_head.use_l1 = False  # a run resumed at epoch 8 switches at once (v2 did not)
    resumed = YOLOXModeSwitchHook(num_last_epochs=3)
    runner.epoch = 8
    resumed.before_train_epoch(runner)
    assert len(skipped) == 2 and model.bbox_head.use_l1 is True
    runner.data_loader = SimpleNamespace(dataset=[])
    with pytest.raises(ConfigError, match="MultiImageMixDataset"):
        YOLOXModeSwitchHook(num_last_epochs=3).before_train_epoch(runner)


def test_sync_norm_hook_syncs_every_epoch_from_the_switch_and_is_a_no_op_alone() -> None:
    model = _model()
    runner = _runner(model, max_epochs=10)
    hook = SyncNormHook(num_last_epochs=3, interval=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner.epoch = 6
    hook.before_train_epoch(runner)
    assert hook.interval == 1
    hook.after_train_epoch(runner)  # one process: nothing to average
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_yolox_lr_policy_of_the_standard_config() -> None:
    """yolox_s: lr 0.01, 5 warm-up epochs (quadratic, from the base lr), cosine to 0.05x,
    flat for the last 15 epochs; here with 10 iterations per epoch and 300 epochs."""
    schedule = build_lr_schedule(
        dict(policy="YOLOX", warmup="exp", by_epoch=False, warmup_by_epoch=True, warmup_ratio=1,
             warmup_iters=5, num_last_epochs=15, min_lr_ratio=0.05)
    )  # fmt: skip

    def lr(it: int) -> float:
        return lr_at(schedule, 0.01, it // 10, it, max_epochs=300, iters_per_epoch=10)

    assert lr(0) == pytest.approx(0.01 * (1 / 50) ** 2)
    assert lr(49) == pytest.approx(0.01)
    assert lr(50) == pytest.approx(0.0005 + 0.5 * 0.0095 * (1 + math.cos(math.pi * 1 / 2800)))
    assert lr(2848) == pytest.approx(0.0005 + 0.5 * 0.0095 * (1 + math.cos(math.pi * 2799 / 2800)))
    assert lr(2849) == lr(2999) == pytest.approx(0.0005)
    with pytest.raises(ConfigError, match="min_lr"):
        build_lr_schedule(dict(policy="YOLOX", num_last_epochs=1))


class _Skippable(torch.utils.data.Dataset):
    """Yields the skip keys it holds: what a loader worker's copy of the dataset sees."""

    def __init__(self) -> None:
        self.skip: list[str] = []

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> str:
        return ",".join(self.skip)

    def update_skip_type_keys(self, keys: list[str]) -> None:
        self.skip = list(keys)


def test_mode_switch_restarts_persistent_workers() -> None:
    loader = torch.utils.data.DataLoader(
        _Skippable(), num_workers=1, persistent_workers=True, collate_fn=lambda batch: batch[0]
    )
    assert list(loader) == [""]  # the worker now holds a copy without skip keys
    model = nn.Module()
    model.bbox_head = nn.Module()
    model.bbox_head.use_l1 = False
    runner = _runner(model, max_epochs=2, data_loader=loader)
    runner.epoch = 1
    YOLOXModeSwitchHook(num_last_epochs=0, skip_type_keys=["Mosaic"]).before_train_epoch(runner)
    assert list(loader) == ["Mosaic"]
