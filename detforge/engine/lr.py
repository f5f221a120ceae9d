"""Build MMCV 1.x ``lr_config`` schedules and evaluate them at any point of training.

``build_lr_schedule(cfg.lr_config)`` turns the v2 dict into a policy object (see
:mod:`detforge.engine.lr_policies`); :func:`lr_at` gives the lr MMCV's ``LrUpdaterHook`` would
have set for a given epoch and global iteration, warmup included; :func:`init_base_lrs` and
:func:`apply_lr` connect a schedule to a ``torch.optim.Optimizer``.

Policy names follow ``mmcv.runner.BaseRunner.register_lr_hook``: a name written all in lower case
is title-cased (``'step'`` -> ``'Step'``, ``'cyclic'`` -> ``'Cyclic'``), any other is used as is
(``'CosineAnnealing'``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch.optim import Optimizer

from detforge.engine.lr_policies import (
    CosineAnnealingLr,
    CosineRestartLr,
    ExpLr,
    FixedLr,
    FlatCosineAnnealingLr,
    InvLr,
    LinearAnnealingLr,
    LrSchedule,
    PolyLr,
    StepLr,
    _anneal_func,
)
from detforge.engine.lr_yolox import YOLOXLr
from detforge.errors import ConfigError, UnexpectedKeyError, UnknownTypeError
from detforge.registry import LR_SCHEDULES
from detforge.utils.suggest import close_matches

__all__ = [
    "POLICIES",
    "CyclicLr",
    "LrSchedule",
    "OneCycleLr",
    "apply_lr",
    "build_lr_schedule",
    "init_base_lrs",
    "lr_at",
    "policy_name",
]


def _require_iter_based(policy: str, by_epoch: bool) -> None:
    if by_epoch:
        raise ConfigError(f"lr_config: policy {policy!r} only supports by_epoch=False")


@LR_SCHEDULES.register_module(name="Cyclic")
class CyclicLr(LrSchedule):
    """Per cycle (``max_iters // cyclic_times`` iters): rise to ``target_ratio[0]``, fall to [1].

    The rise lasts ``int(step_ratio_up * cycle_len)`` iterations; cycle ``c`` shrinks the
    excursion from ``base_lr`` by ``gamma ** c``. Always iteration based.
    """

    policy = "Cyclic"

    def __init__(
        self,
        *,
        by_epoch: bool = False,
        target_ratio: float | Sequence[float] = (10, 1e-4),
        cyclic_times: int = 1,
        step_ratio_up: float = 0.4,
        anneal_strategy: str = "cos",
        gamma: float = 1,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        _require_iter_based(self.policy, by_epoch)
        if isinstance(target_ratio, int | float):
            ratios = (float(target_ratio), target_ratio / 1e5)
        elif len(target_ratio) == 1:
            ratios = (float(target_ratio[0]), target_ratio[0] / 1e5)
        elif len(target_ratio) == 2:
            ratios = (float(target_ratio[0]), float(target_ratio[1]))
        else:
            raise ConfigError(f"lr_config: target_ratio must have 1 or 2 values: {target_ratio!r}")
        if not 0 <= step_ratio_up < 1.0:
            raise ConfigError(f"lr_config: step_ratio_up must be in [0, 1), got {step_ratio_up!r}")
        if not 0 < gamma <= 1:
            raise ConfigError(f"lr_config: gamma must be in (0, 1], got {gamma!r}")
        super().__init__(
            by_epoch=False,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.target_ratio = ratios
        self.cyclic_times = cyclic_times
        self.step_ratio_up = step_ratio_up
        self.anneal_strategy = anneal_strategy
        self.gamma = gamma
        self._anneal = _anneal_func(anneal_strategy, self.policy)

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        cycle_len = self._length(max_epochs, max_iters) // self.cyclic_times
        up = int(self.step_ratio_up * cycle_len)
        pos, cycle = progress % cycle_len, progress // cycle_len
        scale = self.gamma**cycle
        high, low = self.target_ratio
        if pos < up:
            return self._anneal(base_lr, base_lr * (1 - scale + high * scale), pos / up)
        start = 1 - scale + high * scale
        return self._anneal(base_lr * start, base_lr * low, (pos - up) / (cycle_len - up))


@LR_SCHEDULES.register_module(name="OneCycle")
class OneCycleLr(LrSchedule):
    """1cycle: ``max_lr / div_factor`` up to ``max_lr``, then down to ``/ final_div_factor``.

    Mirrors ``torch.optim.lr_scheduler.OneCycleLR``; the base lr per group is
    ``max_lr / div_factor`` (see :meth:`initial_lrs`), not the optimizer's lr. Iteration based.
    """

    policy = "OneCycle"

    def __init__(
        self,
        *,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        by_epoch: bool = False,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        _require_iter_based(self.policy, by_epoch)
        if total_steps is not None and not isinstance(total_steps, int):
            raise ConfigError(f"lr_config: total_steps must be an int, got {total_steps!r}")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ConfigError(f"lr_config: pct_start must be a float in [0, 1], got {pct_start!r}")
        super().__init__(
            by_epoch=False,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        self._anneal = _anneal_func(anneal_strategy, self.policy)

    def initial_lrs(self, group_lrs: Sequence[float]) -> list[float]:
        if isinstance(self.max_lr, int | float):
            return [self.max_lr / self.div_factor] * len(group_lrs)
        if len(self.max_lr) != len(group_lrs):
            raise ConfigError(
                f"lr_config: max_lr has {len(self.max_lr)} values for {len(group_lrs)} param groups"
            )
        return [lr / self.div_factor for lr in self.max_lr]

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        total = self.total_steps if self.total_steps is not None else max_iters
        if total is None:
            raise ConfigError("lr policy 'OneCycle' needs total_steps or max_iters")
        if max_iters is not None and total < max_iters:
            raise ConfigError(
                f"lr_config: total_steps {total} must be >= max_iters {max_iters} of the runner"
            )
        up_end = float(self.pct_start * total) - 1
        phases: list[tuple[float, float, float]] = [(up_end, 1, self.div_factor)]
        if self.three_phase:
            phases.append((float(2 * self.pct_start * total) - 2, self.div_factor, 1))
            phases.append((total - 1, 1, 1 / self.final_div_factor))
        else:
            phases.append((total - 1, self.div_factor, 1 / self.final_div_factor))
        start = 0.0
        for end, start_mult, end_mult in phases:
            if progress <= end:
                pct = (progress - start) / (end - start)
                return self._anneal(base_lr * start_mult, base_lr * end_mult, pct)
            start = end
        raise ValueError(f"OneCycle: iteration {progress} is past total_steps {total}")


POLICIES: dict[str, type[LrSchedule]] = {
    "Fixed": FixedLr,
    "Step": StepLr,
    "Exp": ExpLr,
    "Poly": PolyLr,
    "Inv": InvLr,
    "CosineAnnealing": CosineAnnealingLr,
    "FlatCosineAnnealing": FlatCosineAnnealingLr,
    "CosineRestart": CosineRestartLr,
    "Cyclic": CyclicLr,
    "OneCycle": OneCycleLr,
    "LinearAnnealing": LinearAnnealingLr,
    "YOLOX": YOLOXLr,
}


def policy_name(policy: str) -> str:
    """The schedule name for a ``lr_config.policy`` string (MMCV's title-case rule).

    Example:
        >>> policy_name('step'), policy_name('CosineAnnealing'), policy_name('cyclic')
        ('Step', 'CosineAnnealing', 'Cyclic')
    """
    return policy.title() if policy == policy.lower() else policy


def build_lr_schedule(lr_config: Mapping[str, Any]) -> LrSchedule:
    """Build the schedule described by a v2 ``lr_config`` dict.

    Args:
        lr_config: ``dict(policy=..., <policy args>, by_epoch=..., warmup=..., warmup_iters=...,
            warmup_ratio=..., warmup_by_epoch=...)``; ``policy`` may also be a schedule class.

    Raises:
        UnknownTypeError: unknown policy (the message lists the known ones).
        UnexpectedKeyError: a key the policy does not take (with close matches).
        ConfigError: a value the policy rejects.

    Example:
        >>> s = build_lr_schedule(dict(policy='step', warmup='linear', warmup_iters=500,
        ...                            warmup_ratio=0.001, step=[8, 11]))
        >>> type(s).__name__, s.by_epoch
        ('StepLr', True)
    """
    if not isinstance(lr_config, Mapping):
        raise ConfigError(f"lr_config must be a dict, got {type(lr_config).__name__}")
    args = dict(lr_config)
    if "policy" not in args:
        raise ConfigError(f"lr_config: missing key 'policy' (one of {', '.join(POLICIES)})")
    policy = args.pop("policy")
    if isinstance(policy, type) and issubclass(policy, LrSchedule):
        cls = policy
    elif isinstance(policy, str):
        name = policy_name(policy)
        found = POLICIES.get(name)
        if found is None:
            raise UnknownTypeError(
                f"lr_config: unknown policy {policy!r} (looked up as {name!r}); "
                f"known policies: {', '.join(POLICIES)}"
            )
        cls = found
    else:
        raise ConfigError(f"lr_config: policy must be a string, got {policy!r}")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in args:
        if key not in accepted:
            hits = close_matches(key, accepted)
            hint = f"; did you mean {' or '.join(map(repr, hits))}?" if hits else ""
            raise UnexpectedKeyError(
                f"lr_config: unexpected key {key!r} for policy {cls.policy!r}{hint} "
                f"(accepted: {', '.join(accepted)})"
            )
    return cls(**args)


def lr_at(
    schedule: LrSchedule,
    base_lr: float,
    epoch: int,
    iter: int,
    max_epochs: int | None = None,
    max_iters: int | None = None,
    iters_per_epoch: int | None = None,
) -> float:
    """The lr MMCV's ``LrUpdaterHook`` sets before training iteration ``iter`` of ``epoch``.

    The regular lr is ``schedule.get_lr`` (fixed for the whole epoch when ``by_epoch``); while
    the global iteration is below the warmup length, warmup is applied on top of it.

    Example:
        >>> s = build_lr_schedule(dict(policy='step', warmup='linear', warmup_iters=500,
        ...                            warmup_ratio=0.001, step=[8, 11]))
        >>> round(lr_at(s, 0.02, epoch=0, iter=0), 8), lr_at(s, 0.02, epoch=9, iter=9000)
        (2e-05, 0.002)
    """
    regular = schedule.get_lr(base_lr, epoch, iter, max_epochs, max_iters, iters_per_epoch)
    if schedule.warmup is None or iter >= schedule.num_warmup_iters(iters_per_epoch):
        return regular
    start = base_lr if schedule.warmup_from_base_lr else regular
    return schedule.get_warmup_lr(iter, start, iters_per_epoch)


def init_base_lrs(optimizer: Optimizer, schedule: LrSchedule | None = None) -> list[float]:
    """Set each param group's ``initial_lr`` unless already there (resume) and return them.

    ``OneCycle`` derives the initial lrs from ``max_lr / div_factor``; other schedules use the
    group's ``lr``.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
        >>> init_base_lrs(opt)
        [0.02]
    """
    groups = optimizer.param_groups
    initial = [float(g["lr"]) for g in groups]
    if schedule is not None:
        initial = schedule.initial_lrs(initial)
    for group, lr in zip(groups, initial, strict=True):
        group.setdefault("initial_lr", lr)
    return [float(g["initial_lr"]) for g in groups]


def apply_lr(optimizer: Optimizer, lrs: Sequence[float]) -> None:
    """Write ``lrs[i]`` into ``optimizer.param_groups[i]['lr']``.

    Raises:
        ValueError: the number of lrs differs from the number of param groups.
    """
    groups = optimizer.param_groups
    if len(lrs) != len(groups):
        raise ValueError(f"apply_lr: got {len(lrs)} lrs for {len(groups)} param groups")
    for group, lr in zip(groups, lrs, strict=True):
        group["lr"] = lr
