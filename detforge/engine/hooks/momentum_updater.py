"""Momentum updater hooks of MMCV 1.x, built from ``momentum_config=dict(policy=...)``.

Each hook writes a momentum into every param group before training iterations (or epochs):
``group['momentum']`` for SGD-like optimizers, ``group['betas'][0]`` for the Adam family. The
policy formulas are MMCV's; those shared with the lr policies (step, cosine/linear annealing,
cyclic) are evaluated by the lr schedule objects of :mod:`detforge.engine.lr`, so there is
one copy of each formula. The base momentum of a group is its ``initial_momentum`` (set from
the optimizer at the first run and kept in the optimizer state through resume).

Warmup (``warmup='constant'|'linear'|'exp'``, ``warmup_iters``, ``warmup_ratio=0.9``) starts
*above* the regular momentum and comes down to it, as MMCV defines it: constant
``regular / ratio``; linear ``regular / (1 - (1 - it / n) * (1 - ratio))``; exp
``regular / ratio ** (1 - it / n)``. (MMCV 1.x's ``constant`` warmup read an always-empty
list and so never changed anything; here it applies the documented formula.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.optim import Optimizer

from detforge.engine.hooks.base import Hook, optimizers_of
from detforge.engine.lr import CyclicLr
from detforge.engine.lr_policies import (
    CosineAnnealingLr,
    LinearAnnealingLr,
    LrSchedule,
    StepLr,
    _anneal_func,
)
from detforge.engine.protocols import OptimizerArg, Runner
from detforge.errors import ConfigError
from detforge.registry import HOOKS

__all__ = [
    "CosineAnnealingMomentumUpdaterHook",
    "CyclicMomentumUpdaterHook",
    "LinearAnnealingMomentumUpdaterHook",
    "MomentumUpdaterHook",
    "OneCycleMomentumUpdaterHook",
    "StepMomentumUpdaterHook",
    "current_momentum",
]

_WARMUPS = ("constant", "linear", "exp")


def _group_momentum(group: Mapping[str, Any]) -> float | None:
    if "momentum" in group:
        return float(group["momentum"])
    if "betas" in group:
        return float(group["betas"][0])
    return None


def _set_group_momentum(group: dict[str, Any], value: float) -> None:
    if "momentum" in group:
        group["momentum"] = value
    elif "betas" in group:
        group["betas"] = (value, group["betas"][1])


def current_momentum(optimizer: OptimizerArg | None) -> list[float] | dict[str, list[float]]:
    """Each param group's momentum (``betas[0]`` for Adam-like, 0 when it has none).

    Example:
        >>> import torch
        >>> p = [torch.nn.Parameter(torch.zeros(1))]
        >>> current_momentum(torch.optim.SGD(p, lr=0.1, momentum=0.9))
        [0.9]
        >>> current_momentum(torch.optim.Adam(p, betas=(0.8, 0.99)))
        [0.8]
    """
    out = {
        name: [_group_momentum(g) or 0.0 for g in opt.param_groups]
        for name, opt in optimizers_of(optimizer).items()
    }
    return out[""] if isinstance(optimizer, Optimizer) else out


def _schedule(cls: type[LrSchedule], **kwargs: Any) -> LrSchedule:
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("lr_config", "momentum_config")) from None


class MomentumUpdaterHook(Hook):
    """Base momentum updater: ``get_momentum(runner, base)`` per group, plus warmup.

    With ``by_epoch`` the regular momentum is set before each epoch and warmup (counted in
    iterations) is applied on top of it per iteration; otherwise it is recomputed every
    iteration.

    Args:
        by_epoch: Progress counts epochs rather than iterations.
        warmup: ``None``, ``'constant'``, ``'linear'`` or ``'exp'``.
        warmup_iters: Warmup length in iterations.
        warmup_ratio: Warmup starts at ``regular / warmup_ratio``; in ``(0, 1]``.
    """

    def __init__(
        self,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.9,
    ) -> None:
        if warmup is not None:
            if warmup not in _WARMUPS:
                raise ConfigError(
                    f"momentum_config: warmup={warmup!r} is not supported; use one of "
                    f"{', '.join(map(repr, _WARMUPS))} or None"
                )
            if not warmup_iters > 0:
                raise ConfigError(f"momentum_config: warmup_iters must be > 0, got {warmup_iters}")
            if not 0 < warmup_ratio <= 1.0:
                raise ConfigError(
                    f"momentum_config: warmup_ratio must be in (0, 1], got {warmup_ratio}"
                )
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.base_momentum: dict[str, list[float]] = {}
        self.regular_momentum: dict[str, list[float]] = {}

    # --- to override ------------------------------------------------------------------------
    def get_momentum(self, runner: Runner, base_momentum: float) -> float:
        """The regular momentum at the runner's position for a group whose base is given."""
        raise NotImplementedError

    # --- shared machinery -------------------------------------------------------------------
    def before_run(self, runner: Runner) -> None:
        self.base_momentum = {}
        for name, opt in optimizers_of(runner.optimizer).items():
            for index, group in enumerate(opt.param_groups):
                value = _group_momentum(group)
                if value is None:
                    raise ConfigError(
                        f"momentum_config: {type(opt).__name__} param group {index} has neither "
                        "'momentum' nor 'betas'; use an optimizer with momentum or drop "
                        "momentum_config"
                    )
                group.setdefault("initial_momentum", value)
            self.base_momentum[name] = [float(g["initial_momentum"]) for g in opt.param_groups]

    def get_regular_momentum(self, runner: Runner) -> dict[str, list[float]]:
        """The un-warmed momentum of every group of every optimizer."""
        return {
            name: [self.get_momentum(runner, base) for base in bases]
            for name, bases in self.base_momentum.items()
        }

    def get_warmup_momentum(self, cur_iter: int) -> dict[str, list[float]]:
        """The warmed-up momentum at iteration ``cur_iter`` from the current regular one."""
        if self.warmup == "constant":
            factor = self.warmup_ratio
        elif self.warmup == "linear":
            factor = 1 - (1 - cur_iter / self.warmup_iters) * (1 - self.warmup_ratio)
        else:
            factor = self.warmup_ratio ** (1 - cur_iter / self.warmup_iters)
        return {k: [m / factor for m in v] for k, v in self.regular_momentum.items()}

    def _apply(self, runner: Runner, values: Mapping[str, Sequence[float]]) -> None:
        opts = optimizers_of(runner.optimizer)
        for name, moms in values.items():
            for group, mom in zip(opts[name].param_groups, moms, strict=True):
                _set_group_momentum(group, mom)

    def before_train_epoch(self, runner: Runner) -> None:
        if not self.base_momentum:
            self.before_run(runner)
        if not self.by_epoch:
            return
        self.regular_momentum = self.get_regular_momentum(runner)
        self._apply(runner, self.regular_momentum)

    def before_train_iter(self, runner: Runner) -> None:
        if not self.base_momentum:
            self.before_run(runner)
        cur = runner.iter
        if not self.by_epoch:
            self.regular_momentum = self.get_regular_momentum(runner)
            if self.warmup is None or cur >= self.warmup_iters:
                self._apply(runner, self.regular_momentum)
            else:
                self._apply(runner, self.get_warmup_momentum(cur))
        elif self.warmup is not None and cur <= self.warmup_iters:
            if cur == self.warmup_iters:
                self._apply(runner, self.regular_momentum)
            else:
                self._apply(runner, self.get_warmup_momentum(cur))


class _ScheduleMomentumHook(MomentumUpdaterHook):
    """A momentum hook whose formula is an lr schedule's (the schedule sees the base momentum
    where it would see a base lr)."""

    schedule: LrSchedule

    def get_momentum(self, runner: Runner, base_momentum: float) -> float:
        return self.schedule.get_lr(
            base_momentum,
            epoch=runner.epoch,
            iter=runner.iter,
            max_epochs=runner.max_epochs,
            max_iters=runner.max_iters,
            iters_per_epoch=self.iters_per_epoch(runner),
        )


@HOOKS.register_module()
class StepMomentumUpdaterHook(_ScheduleMomentumHook):
    """``base * gamma ** k`` (``k`` = milestones of ``step`` passed), clipped at ``min_momentum``.

    Example:
        >>> hook = StepMomentumUpdaterHook(step=[2, 4], gamma=0.5)
        >>> hook.schedule.get_lr(0.9, epoch=3)
        0.45
    """

    def __init__(
        self,
        step: int | list[int],
        gamma: float = 0.5,
        min_momentum: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.9,
    ) -> None:
        super().__init__(by_epoch, warmup, warmup_iters, warmup_ratio)
        self.schedule = _schedule(
            StepLr, step=step, gamma=gamma, min_lr=min_momentum, by_epoch=by_epoch
        )


class _AnnealingMomentumHook(_ScheduleMomentumHook):
    """Anneals from the base momentum to ``min_momentum`` (or ``base * min_momentum_ratio``)
    along the lr schedule class ``_SCHEDULE``."""

    _SCHEDULE: type[LrSchedule]

    def __init__(
        self,
        min_momentum: float | None = None,
        min_momentum_ratio: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.9,
    ) -> None:
        if (min_momentum is None) == (min_momentum_ratio is None):
            raise ConfigError(
                "momentum_config: give exactly one of min_momentum and min_momentum_ratio, got "
                f"min_momentum={min_momentum!r}, min_momentum_ratio={min_momentum_ratio!r}"
            )
        super().__init__(by_epoch, warmup, warmup_iters, warmup_ratio)
        self.schedule = _schedule(
            self._SCHEDULE,
            min_lr=min_momentum,
            min_lr_ratio=min_momentum_ratio,
            by_epoch=by_epoch,
        )


@HOOKS.register_module()
class CosineAnnealingMomentumUpdaterHook(_AnnealingMomentumHook):
    """Half cosine from the base momentum to ``min_momentum`` (or ``base * min_momentum_ratio``)
    over ``max_epochs`` (``max_iters`` when not ``by_epoch``)."""

    _SCHEDULE = CosineAnnealingLr


@HOOKS.register_module()
class LinearAnnealingMomentumUpdaterHook(_AnnealingMomentumHook):
    """Straight line from the base momentum to ``min_momentum`` (or the ratio of the base)."""

    _SCHEDULE = LinearAnnealingLr


@HOOKS.register_module()
class CyclicMomentumUpdaterHook(_ScheduleMomentumHook):
    """Cyclic momentum (Smith 2017), the mirror of ``CyclicLrUpdaterHook``; iteration based.

    Each of ``cyclic_times`` cycles of ``max_iters // cyclic_times`` iterations anneals the
    momentum from the base to ``base * target_ratio[0]`` during the first
    ``int(step_ratio_up * cycle)`` iterations, then to ``base * target_ratio[1]``; cycle ``c``
    shrinks the excursion by ``gamma ** c``. The default ``(0.85 / 0.95, 1)`` takes 0.95 down
    to 0.85 while the cyclic lr rises, and back.
    """

    def __init__(
        self,
        by_epoch: bool = False,
        target_ratio: float | Sequence[float] = (0.85 / 0.95, 1),
        cyclic_times: int = 1,
        step_ratio_up: float = 0.4,
        anneal_strategy: str = "cos",
        gamma: float = 1,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.9,
    ) -> None:
        if by_epoch:
            raise ConfigError("momentum_config: policy 'cyclic' only supports by_epoch=False")
        super().__init__(False, warmup, warmup_iters, warmup_ratio)
        self.schedule = _schedule(
            CyclicLr,
            target_ratio=target_ratio,
            cyclic_times=cyclic_times,
            step_ratio_up=step_ratio_up,
            anneal_strategy=anneal_strategy,
            gamma=gamma,
        )


def _per_group(
    value: float | Sequence[float] | Mapping[str, Any], name: str, opt: Optimizer, what: str
) -> list[float]:
    groups = len(opt.param_groups)
    if isinstance(value, int | float):
        return [float(value)] * groups
    if isinstance(value, Mapping):
        key = name or type(opt).__name__
        if key not in value:
            raise ConfigError(f"momentum_config: {what} has no entry for optimizer {key!r}")
        return _per_group(value[key], name, opt, what)
    if len(value) != groups:
        raise ConfigError(
            f"momentum_config: {what} has {len(value)} values for {groups} param groups"
        )
    return [float(v) for v in value]


@HOOKS.register_module()
class OneCycleMomentumUpdaterHook(MomentumUpdaterHook):
    """1cycle momentum: ``max_momentum`` down to ``base_momentum`` while the lr rises
    (``pct_start`` of ``max_iters``), then back up (``three_phase``: up, then held at max).

    Phase ends are ``pct_start * max_iters - 1`` (and ``2 * pct_start * max_iters - 2``) and
    ``max_iters - 1``, as in MMCV and ``torch.optim.lr_scheduler.OneCycleLR``. Iteration based.
    """

    def __init__(
        self,
        base_momentum: float | Sequence[float] | Mapping[str, Any] = 0.85,
        max_momentum: float | Sequence[float] | Mapping[str, Any] = 0.95,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
        by_epoch: bool = False,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.9,
    ) -> None:
        if by_epoch:
            raise ConfigError("momentum_config: policy 'OneCycle' only supports by_epoch=False")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ConfigError(
                f"momentum_config: pct_start must be a float in [0, 1], got {pct_start!r}"
            )
        super().__init__(False, warmup, warmup_iters, warmup_ratio)
        self._base = base_momentum
        self._max = max_momentum
        self.pct_start = pct_start
        self.three_phase = three_phase
        self.anneal_func = _anneal_func(anneal_strategy, "OneCycle")
        self.bounds: dict[str, list[tuple[float, float]]] = {}

    def before_run(self, runner: Runner) -> None:
        for name, opt in optimizers_of(runner.optimizer).items():
            if "momentum" not in opt.defaults and "betas" not in opt.defaults:
                raise ConfigError(
                    f"momentum_config: policy 'OneCycle' needs an optimizer with momentum or "
                    f"betas, got {type(opt).__name__}"
                )
            lows = _per_group(self._base, name, opt, "base_momentum")
            highs = _per_group(self._max, name, opt, "max_momentum")
            for group, low, high in zip(opt.param_groups, lows, highs, strict=True):
                _set_group_momentum(group, high)
                group["base_momentum"], group["max_momentum"] = low, high
            self.bounds[name] = list(zip(lows, highs, strict=True))
        self.base_momentum = {k: [hi for _, hi in v] for k, v in self.bounds.items()}

    def _phases(self, max_iters: int) -> list[tuple[float, int, int]]:
        # (end iteration, start bound, end bound); bound 0 = base_momentum, 1 = max_momentum
        first = float(self.pct_start * max_iters) - 1
        if self.three_phase:
            second = float(2 * self.pct_start * max_iters) - 2
            return [(first, 1, 0), (second, 0, 1), (max_iters - 1, 1, 1)]
        return [(first, 1, 0), (max_iters - 1, 0, 1)]

    def get_regular_momentum(self, runner: Runner) -> dict[str, list[float]]:
        if not runner.max_iters:
            raise ConfigError("momentum_config: policy 'OneCycle' needs the runner's max_iters")
        phases = self._phases(runner.max_iters)
        it, start, index = runner.iter, 0.0, len(phases) - 1
        for i, (end, _, _) in enumerate(phases[:-1]):
            if it <= end:
                index = i
                break
            start = end
        end, a, b = phases[index]
        pct = (it - start) / (end - start)
        return {
            name: [self.anneal_func(pair[a], pair[b], pct) for pair in pairs]
            for name, pairs in self.bounds.items()
        }

    def get_momentum(self, runner: Runner, base_momentum: float) -> float:
        raise NotImplementedError("OneCycle computes all groups in get_regular_momentum")
