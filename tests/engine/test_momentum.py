"""Momentum updater hooks: values at chosen iterations equal hand-computed MMCV formulas.

The expected numbers are written out as literals, computed by hand from the formulas
(``annealing_cos(a, b, f) = b + (a - b) * (cos(pi * f) + 1) / 2``).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from detforge.engine.hooks import (
    CosineAnnealingMomentumUpdaterHook,
    CyclicMomentumUpdaterHook,
    Hook,
    LinearAnnealingMomentumUpdaterHook,
    OneCycleMomentumUpdaterHook,
    StepMomentumUpdaterHook,
    current_momentum,
)
from detforge.engine.runner import IterBasedRunner
from detforge.errors import ConfigError
from tests.engine.test_runner import FakeModel, make_loader


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2))]


def fake_runner(opt: Any, max_epochs: int | None = None, max_iters: int | None = None) -> Any:
    return SimpleNamespace(
        optimizer=opt, epoch=0, iter=0, max_epochs=max_epochs, max_iters=max_iters,
        data_loader=[0] * 4,
    )  # fmt: skip


def momentum_at_iters(hook: Any, runner: Any, iters: list[int]) -> list[float]:
    """Set runner.iter (and the epoch of a 4-batch epoch), call the hook, read momentum."""
    hook.before_run(runner)
    out = []
    for it in iters:
        epoch = it // 4
        if epoch != runner.epoch or it == iters[0]:
            runner.epoch, runner.iter = epoch, it
            hook.before_train_epoch(runner)
        runner.iter = it
        hook.before_train_iter(runner)
        out.append(current_momentum(runner.optimizer)[0])
    return out


def test_step_by_epoch_with_min_momentum() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.9)
    hook = StepMomentumUpdaterHook(step=[2, 4], gamma=0.5, min_momentum=0.3)
    runner = fake_runner(opt, max_epochs=6)
    # epochs 0,1: 0.9; epochs 2,3: 0.9 * 0.5; epoch 4: max(0.9 * 0.25, 0.3)
    got = momentum_at_iters(hook, runner, [0, 4, 8, 12, 16, 20])
    assert got == pytest.approx([0.9, 0.9, 0.45, 0.45, 0.3, 0.3])


def test_cosine_annealing_by_iter_on_adam_betas() -> None:
    opt = torch.optim.Adam(_params(), lr=0.1, betas=(0.9, 0.999))
    hook = CosineAnnealingMomentumUpdaterHook(min_momentum_ratio=0.5, by_epoch=False)
    runner = fake_runner(opt, max_epochs=2, max_iters=8)
    got = momentum_at_iters(hook, runner, [0, 2, 4, 6])
    # target 0.45; 0.45 + 0.225 * (cos(pi * f) + 1): f=1/4 -> 1.70710678, f=3/4 -> 0.29289322
    assert got == pytest.approx([0.9, 0.83409903, 0.675, 0.51590097])
    assert opt.param_groups[0]["betas"][1] == 0.999
    assert opt.param_groups[0]["initial_momentum"] == 0.9


def test_linear_annealing_by_epoch() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.8)
    hook = LinearAnnealingMomentumUpdaterHook(min_momentum=0.4)
    runner = fake_runner(opt, max_epochs=4)
    # 0.8 + (0.4 - 0.8) * epoch / 4
    assert momentum_at_iters(hook, runner, [0, 4, 8, 12]) == pytest.approx([0.8, 0.7, 0.6, 0.5])


def test_cyclic_with_gamma_and_two_cycles() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.95)
    hook = CyclicMomentumUpdaterHook(cyclic_times=2, gamma=0.5)
    runner = fake_runner(opt, max_iters=10)
    # cycle 5 iters, up 2; cycle 0: 0.95 -> 0.85 -> 0.95; cycle 1 (scale 0.5) peaks at
    # 0.95 * (1 - 0.5 + 0.5 * 0.85 / 0.95) = 0.9
    got = momentum_at_iters(hook, runner, [0, 1, 2, 5, 6, 7])
    assert got == pytest.approx([0.95, 0.9, 0.85, 0.95, 0.925, 0.9])


class Recorder(Hook):
    def __init__(self) -> None:
        self.lr: list[float] = []
        self.momentum: list[float] = []

    def before_train_iter(self, runner: Any) -> None:
        self.lr.append(runner.optimizer.param_groups[0]["lr"])
        self.momentum.append(runner.optimizer.param_groups[0]["momentum"])


def test_cyclic_momentum_paired_with_cyclic_lr_in_a_runner(tmp_path: Any) -> None:
    torch.manual_seed(0)
    model = FakeModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.95)
    runner = IterBasedRunner(
        model, opt, work_dir=str(tmp_path), logger=logging.getLogger("t"), meta={}, max_iters=10
    )
    runner.register_training_hooks(
        dict(policy="cyclic", target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4),
        dict(grad_clip=None),
        momentum_config=dict(policy="cyclic", target_ratio=(0.85 / 0.95, 1), step_ratio_up=0.4),
    )
    rec = Recorder()
    runner.register_hook(rec, "LOWEST")
    info = runner.get_hook_info()
    assert "(HIGH        ) CyclicMomentumUpdaterHook" in info
    assert "(VERY_HIGH   ) CyclicLrUpdaterHook" in info  # MMCV's class name, not a factory's
    runner.run([make_loader(4)], [("train", 1)])
    # up (iters 0-3, f = i / 4): 0.95 -> 0.85; down (iters 4-9, f = (i - 4) / 6): 0.85 -> 0.95
    assert rec.momentum == pytest.approx(
        [0.95, 0.93535534, 0.9, 0.86464466, 0.85, 0.8566987, 0.875, 0.9, 0.925, 0.94330127]
    )
    # the lr rises while the momentum falls: iter 2 = 1.0 + (0.1 - 1.0) / 2, iter 4 = max
    assert rec.lr[2] == pytest.approx(0.55) and rec.lr[4] == pytest.approx(1.0)


def test_one_cycle_two_and_three_phases() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.9)
    hook = OneCycleMomentumUpdaterHook(base_momentum=0.85, max_momentum=0.95, pct_start=0.3)
    runner = fake_runner(opt, max_iters=10)
    hook.before_run(runner)
    assert opt.param_groups[0]["momentum"] == 0.95
    assert opt.param_groups[0]["base_momentum"] == 0.85
    # phase ends 0.3 * 10 - 1 = 2 and 9; iter 3: 0.95 - 0.05 * (cos(pi / 7) + 1)
    got = momentum_at_iters(hook, runner, [0, 1, 2, 3, 9])
    assert got == pytest.approx([0.95, 0.9, 0.85, 0.85495156, 0.95])

    opt3 = torch.optim.Adam(_params(), lr=0.1)
    hook3 = OneCycleMomentumUpdaterHook(pct_start=0.3, three_phase=True, anneal_strategy="linear")
    runner3 = fake_runner(opt3, max_iters=10)
    # ends 2, 0.6 * 10 - 2 = 4, 9: linear 0.95 -> 0.85 -> 0.95, then held at 0.95
    got3 = momentum_at_iters(hook3, runner3, [1, 2, 3, 4, 6])
    assert got3 == pytest.approx([0.9, 0.85, 0.9, 0.95, 0.95])
    assert opt3.param_groups[0]["betas"][1] == 0.999


@pytest.mark.parametrize(
    ("warmup", "expected"),
    [
        # linear: 0.9 / (1 - (1 - it / 4) * 0.1)
        ("linear", [1.0, 0.94736842, 0.9, 0.9]),
        # exp: 0.9 / 0.9 ** (1 - it / 4)
        ("exp", [1.0, 0.9486833, 0.9, 0.9]),
        # constant: 0.9 / 0.9 during warmup
        ("constant", [1.0, 1.0, 0.9, 0.9]),
    ],
)
def test_warmup_by_iter(warmup: str, expected: list[float]) -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.9)
    hook = StepMomentumUpdaterHook(
        step=[100], by_epoch=False, warmup=warmup, warmup_iters=4, warmup_ratio=0.9
    )
    got = momentum_at_iters(hook, fake_runner(opt, max_iters=10), [0, 2, 4, 5])
    assert got == pytest.approx(expected)


def test_warmup_by_epoch_ends_on_the_regular_value() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.9)
    hook = StepMomentumUpdaterHook(step=[1], warmup="linear", warmup_iters=3, warmup_ratio=0.9)
    # epoch 0 regular 0.9; iter 1: 0.9 / (1 - 2/3 * 0.1); iter 3 = warmup end; epoch 1 halves
    got = momentum_at_iters(hook, fake_runner(opt, max_epochs=3), [0, 1, 3, 4])
    assert got == pytest.approx([1.0, 0.96428571, 0.9, 0.45])


def test_resume_keeps_initial_momentum() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.5)
    opt.param_groups[0]["initial_momentum"] = 0.8  # restored from a checkpoint
    hook = StepMomentumUpdaterHook(step=2, gamma=0.5)
    assert momentum_at_iters(hook, fake_runner(opt, max_epochs=4), [8]) == pytest.approx([0.4])


def test_errors_name_the_problem(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="by_epoch=False"):
        CyclicMomentumUpdaterHook(by_epoch=True)
    with pytest.raises(ConfigError, match="exactly one of min_momentum"):
        CosineAnnealingMomentumUpdaterHook(min_momentum=0.1, min_momentum_ratio=0.1)
    with pytest.raises(ConfigError, match="momentum_config: step must be"):
        StepMomentumUpdaterHook(step=0)
    opt = torch.optim.Adagrad(_params(), lr=0.1)
    with pytest.raises(ConfigError, match="Adagrad param group 0 has neither"):
        StepMomentumUpdaterHook(step=1).before_run(fake_runner(opt, max_epochs=1))
    runner = IterBasedRunner(FakeModel(), None, work_dir=str(tmp_path), max_iters=1)
    with pytest.raises(Exception, match="CosineAnnealingMomentumUpdaterHook"):
        runner.register_training_hooks(None, momentum_config=dict(policy="CosineAnealing"))
