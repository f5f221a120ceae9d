"""LR schedules: literal values of MMCV 1.x lr_updater semantics, torch parity for OneCycle."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from detforge.engine.lr import (
    CyclicLr,
    LrSchedule,
    OneCycleLr,
    apply_lr,
    build_lr_schedule,
    init_base_lrs,
    lr_at,
    policy_name,
)
from detforge.engine.lr_policies import (
    CosineAnnealingLr,
    CosineRestartLr,
    FlatCosineAnnealingLr,
    LinearAnnealingLr,
    StepLr,
)
from detforge.errors import ConfigError, UnexpectedKeyError, UnknownTypeError

BASE = 0.02


def _approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def test_policy_name_mapping() -> None:
    assert policy_name("step") == "Step"
    assert policy_name("cyclic") == "Cyclic"
    assert policy_name("onecycle") == "Onecycle"  # title() of an all-lowercase name
    assert policy_name("CosineAnnealing") == "CosineAnnealing"
    assert policy_name("OneCycle") == "OneCycle"
    assert isinstance(build_lr_schedule(dict(policy="step", step=3)), StepLr)
    assert isinstance(build_lr_schedule(dict(policy="cyclic")), CyclicLr)
    assert isinstance(build_lr_schedule(dict(policy="OneCycle", max_lr=0.1)), OneCycleLr)
    assert isinstance(
        build_lr_schedule(dict(policy="CosineAnnealing", min_lr=0.0)), CosineAnnealingLr
    )
    assert type(build_lr_schedule(dict(policy="fixed"))).__name__ == "FixedLr"


def test_unknown_policy_and_keys_errors() -> None:
    with pytest.raises(UnknownTypeError, match=r"known policies: .*CosineAnnealing.*OneCycle"):
        build_lr_schedule(dict(policy="cosine"))
    with pytest.raises(UnknownTypeError, match="'Onecycle'"):
        build_lr_schedule(dict(policy="onecycle", max_lr=0.1))
    with pytest.raises(UnexpectedKeyError, match=r"'steps'.*did you mean 'step'"):
        build_lr_schedule(dict(policy="step", steps=[8, 11]))
    with pytest.raises(ConfigError, match="policy"):
        build_lr_schedule(dict(step=[8, 11]))
    with pytest.raises(ConfigError, match="warmup"):
        build_lr_schedule(dict(policy="step", step=[8], warmup="cosine", warmup_iters=5))
    with pytest.raises(ConfigError, match="min_lr"):
        build_lr_schedule(dict(policy="CosineAnnealing"))
    with pytest.raises(ConfigError, match="by_epoch=False"):
        build_lr_schedule(dict(policy="cyclic", by_epoch=True))


def test_step_epochs_are_zero_based() -> None:
    s = build_lr_schedule(dict(policy="step", step=[8, 11]))
    lrs = [s.get_lr(BASE, epoch=e) for e in range(12)]
    assert lrs[:8] == [BASE] * 8
    assert lrs[8:11] == [_approx(BASE * 0.1)] * 3
    assert lrs[11] == _approx(BASE * 0.01)
    assert StepLr(step=3, gamma=0.5).get_lr(1.0, epoch=7) == 0.25  # 7 // 3 = 2 decays
    assert StepLr(step=[1], gamma=0.1, min_lr=0.05).get_lr(1.0, epoch=5) == 0.1
    assert StepLr(step=[1], min_lr=0.5).get_lr(1.0, epoch=5) == 0.5
    # by_epoch=False counts global iterations instead
    assert StepLr(step=[100], by_epoch=False).get_lr(1.0, epoch=0, iter=100) == _approx(0.1)


def test_linear_warmup_schedule_1x() -> None:
    s = build_lr_schedule(
        dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[8, 11])
    )
    assert lr_at(s, BASE, epoch=0, iter=0) == _approx(BASE * 0.001)
    assert lr_at(s, BASE, epoch=0, iter=250) == _approx(BASE * (1 - (1 - 0.5) * (1 - 0.001)))
    assert lr_at(s, BASE, epoch=0, iter=499) == _approx(BASE * (1 - (1 / 500) * 0.999))
    assert lr_at(s, BASE, epoch=0, iter=500) == BASE
    assert lr_at(s, BASE, epoch=8, iter=8000) == _approx(BASE * 0.1)


def test_constant_and_exp_warmup() -> None:
    c = StepLr(step=[8], warmup="constant", warmup_iters=100, warmup_ratio=1 / 3)
    assert lr_at(c, BASE, 0, 0) == _approx(BASE / 3)
    assert lr_at(c, BASE, 0, 99) == _approx(BASE / 3)
    assert lr_at(c, BASE, 0, 100) == BASE
    e = StepLr(step=[8], warmup="exp", warmup_iters=100, warmup_ratio=0.01)
    assert lr_at(e, BASE, 0, 0) == _approx(BASE * 0.01)
    assert lr_at(e, BASE, 0, 50) == _approx(BASE * 0.01**0.5)
    assert lr_at(e, BASE, 0, 100) == BASE


def test_warmup_by_epoch_uses_iters_per_epoch() -> None:
    s = StepLr(step=[8], warmup="linear", warmup_iters=2, warmup_ratio=0.1, warmup_by_epoch=True)
    assert s.num_warmup_iters(iters_per_epoch=10) == 20
    assert lr_at(s, 1.0, epoch=1, iter=10, iters_per_epoch=10) == _approx(1 - 0.5 * 0.9)
    assert lr_at(s, 1.0, epoch=2, iter=20, iters_per_epoch=10) == 1.0
    with pytest.raises(ConfigError, match="iters_per_epoch"):
        lr_at(s, 1.0, epoch=0, iter=0)


def _mmcv_hook_reference(
    schedule: LrSchedule, base_lr: float, max_epochs: int, iters_per_epoch: int
) -> list[float]:
    """Slow stateful replay of LrUpdaterHook.before_train_epoch / before_train_iter."""
    out: list[float] = []
    warmup_iters = schedule.num_warmup_iters(iters_per_epoch)
    lr: float | None = None
    regular = 0.0
    it = 0
    max_iters = max_epochs * iters_per_epoch
    for epoch in range(max_epochs):
        if schedule.by_epoch:
            regular = schedule.get_lr(base_lr, epoch=epoch, max_epochs=max_epochs)
            lr = regular
        for _ in range(iters_per_epoch):
            if not schedule.by_epoch:
                regular = schedule.get_lr(base_lr, iter=it, max_iters=max_iters)
                lr = regular if schedule.warmup is None or it >= warmup_iters else None
            elif schedule.warmup is not None and it == warmup_iters:
                lr = regular
            if lr is None or (schedule.warmup is not None and it < warmup_iters):
                lr = schedule.get_warmup_lr(it, regular, iters_per_epoch)
            out.append(lr)
            it += 1
    return out


@pytest.mark.parametrize("by_epoch", [True, False])
def test_lr_at_matches_stateful_hook_replay(by_epoch: bool) -> None:
    # warmup spans an epoch boundary where the step decays (epoch 1)
    s = StepLr(step=[1, 3], by_epoch=by_epoch, warmup="linear", warmup_iters=7, warmup_ratio=0.2)
    if not by_epoch:
        s = StepLr(step=[4, 12], by_epoch=False, warmup="exp", warmup_iters=7, warmup_ratio=0.2)
    ref = _mmcv_hook_reference(s, 0.1, max_epochs=4, iters_per_epoch=5)
    got = [lr_at(s, 0.1, epoch=i // 5, iter=i, max_epochs=4, iters_per_epoch=5) for i in range(20)]
    assert got == pytest.approx(ref, rel=1e-12)
    assert len(set(got)) > 4


def test_closed_forms_poly_exp_inv() -> None:
    poly = build_lr_schedule(dict(policy="poly", power=0.9, min_lr=1e-4, by_epoch=False))
    assert poly.get_lr(BASE, iter=300, max_iters=1000) == _approx(
        (BASE - 1e-4) * (1 - 0.3) ** 0.9 + 1e-4
    )
    assert poly.get_lr(BASE, epoch=3, max_epochs=12, iters_per_epoch=10, iter=30) == _approx(
        (BASE - 1e-4) * (1 - 30 / 120) ** 0.9 + 1e-4
    )  # max_iters derived from max_epochs * iters_per_epoch
    ex = build_lr_schedule(dict(policy="exp", gamma=0.9))
    assert ex.get_lr(BASE, epoch=5) == _approx(BASE * 0.9**5)
    inv = build_lr_schedule(dict(policy="inv", gamma=0.01, power=0.75, by_epoch=False))
    assert inv.get_lr(BASE, iter=200) == _approx(BASE * (1 + 0.01 * 200) ** -0.75)


def test_cosine_annealing_end_points_and_midpoint() -> None:
    s = build_lr_schedule(dict(policy="CosineAnnealing", min_lr_ratio=0.01))
    assert s.get_lr(BASE, epoch=0, max_epochs=12) == _approx(BASE)
    assert s.get_lr(BASE, epoch=6, max_epochs=12) == _approx(BASE * (0.01 + 0.99 / 2))
    assert s.get_lr(BASE, epoch=12, max_epochs=12) == _approx(BASE * 0.01)
    m = CosineAnnealingLr(min_lr=1e-3, by_epoch=False)
    assert m.get_lr(BASE, iter=250, max_iters=1000) == _approx(
        1e-3 + 0.5 * (BASE - 1e-3) * (1 + math.cos(math.pi / 4))
    )
    lin = LinearAnnealingLr(min_lr_ratio=0.0)
    assert lin.get_lr(1.0, epoch=3, max_epochs=12) == _approx(0.75)


def test_flat_cosine() -> None:
    s = FlatCosineAnnealingLr(start_percent=0.5, min_lr=0.0)
    assert s.get_lr(1.0, epoch=5, max_epochs=12) == 1.0
    assert s.get_lr(1.0, epoch=6, max_epochs=12) == 1.0
    assert s.get_lr(1.0, epoch=9, max_epochs=12) == _approx(0.5)
    with pytest.raises(ConfigError, match="start_percent"):
        FlatCosineAnnealingLr(start_percent=1, min_lr=0.0)


def test_cosine_restart_across_period_boundary() -> None:
    s = CosineRestartLr(periods=[5, 10], restart_weights=[1, 0.5], min_lr_ratio=0.1)
    assert s.get_lr(1.0, epoch=0) == _approx(1.0)
    assert s.get_lr(1.0, epoch=4) == _approx(0.1 + 0.45 * (1 + math.cos(math.pi * 4 / 5)))
    # restart at 5: weight 0.5 gives 0.5 * 1 + 0.5 * 0.1
    assert s.get_lr(1.0, epoch=5) == _approx(0.55)
    assert s.get_lr(1.0, epoch=10) == _approx(0.1 + 0.5 * 0.45 * 1.0)
    with pytest.raises(ValueError, match="past"):
        s.get_lr(1.0, epoch=15)


def test_cyclic_phases() -> None:
    s = build_lr_schedule(dict(policy="cyclic", target_ratio=(10, 1e-4), step_ratio_up=0.4))
    lr = [s.get_lr(1.0, iter=i, max_iters=100) for i in range(100)]
    assert lr[0] == _approx(1.0)
    assert lr[20] == _approx(5.5)  # halfway up the cosine from 1 to 10
    assert lr[40] == _approx(10.0)  # peak = target_ratio[0]
    assert lr[99] == _approx(1e-4 + 0.5 * (10 - 1e-4) * (1 + math.cos(math.pi * 59 / 60)))
    assert max(lr) == lr[40]
    assert min(lr) == lr[99]
    # two cycles with gamma: second cycle's excursion is halved
    g = CyclicLr(cyclic_times=2, gamma=0.5, anneal_strategy="linear")
    assert g.get_lr(1.0, iter=20, max_iters=100) == _approx(10.0)
    assert g.get_lr(1.0, iter=50, max_iters=100) == _approx(1.0)
    assert g.get_lr(1.0, iter=70, max_iters=100) == _approx(5.5)
    assert g.get_lr(1.0, iter=85, max_iters=100) == _approx((5.5 + 1e-4) / 2)
    assert CyclicLr(target_ratio=2.0).target_ratio == (2.0, 2e-5)


@pytest.mark.parametrize(
    ("three_phase", "strategy"), [(False, "cos"), (True, "cos"), (False, "linear")]
)
def test_one_cycle_matches_torch(three_phase: bool, strategy: str) -> None:
    total = 50
    cfg = dict(policy="OneCycle", max_lr=0.1, three_phase=three_phase, anneal_strategy=strategy)
    s = build_lr_schedule(cfg)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.5, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=0.1,
        total_steps=total,
        three_phase=three_phase,
        anneal_strategy=strategy,  # type: ignore[arg-type]
    )
    ref_lrs = []
    for _ in range(total):
        ref_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    (base,) = init_base_lrs(opt2, s)
    assert base == _approx(0.1 / 25)
    got = [lr_at(s, base, epoch=0, iter=i, max_iters=total) for i in range(total)]
    assert got == pytest.approx(ref_lrs, rel=1e-9)
    assert got[0] == _approx(0.004)
    assert max(got) == _approx(0.1)
    assert got[-1] == _approx(0.004 / 1e4)
    with pytest.raises(ConfigError, match="total_steps"):
        OneCycleLr(max_lr=0.1, total_steps=10).get_lr(0.004, iter=0, max_iters=20)


def test_init_base_lrs_and_apply_lr() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    groups: list[dict[str, Any]] = [{"params": [a]}, {"params": [b], "lr": 0.1}]
    opt = torch.optim.SGD(groups, lr=0.02)
    assert init_base_lrs(opt) == [0.02, 0.1]
    s = build_lr_schedule(dict(policy="step", step=[1]))
    apply_lr(opt, [s.get_lr(lr, epoch=1) for lr in init_base_lrs(opt)])
    assert [g["lr"] for g in opt.param_groups] == [_approx(0.002), _approx(0.01)]
    # initial_lr is kept (resume): a second call does not take the decayed lr
    assert init_base_lrs(opt) == [0.02, 0.1]
    with pytest.raises(ValueError, match="2 param groups"):
        apply_lr(opt, [0.1])
