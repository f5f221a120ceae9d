"""LR updater hooks: set each param group's lr before every training iteration.

One hook class, :class:`LrUpdaterHook`, drives any schedule of :mod:`detforge.engine.lr`;
the MMCV names (``StepLrUpdaterHook``, ``CosineAnnealingLrUpdaterHook``, ...) are registered
as builders that take the policy's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detforge.engine.hooks.base import Hook, optimizers_of, policy_hook_name
from detforge.engine.lr import (
    POLICIES,
    LrSchedule,
    apply_lr,
    build_lr_schedule,
    init_base_lrs,
    lr_at,
)
from detforge.engine.protocols import Runner
from detforge.registry import HOOKS

__all__ = ["LrUpdaterHook"]


class LrUpdaterHook(Hook):
    """Writes ``lr_at(schedule, ...)`` into every param group before each training iteration.

    The regular lr stays fixed within an epoch for ``by_epoch`` schedules; warmup is applied
    per iteration on top of it, as in MMCV. Base lrs are the groups' ``initial_lr`` (set at
    the first run, kept through resume since the optimizer state dict carries them).

    Args:
        schedule: A schedule from :func:`detforge.engine.lr.build_lr_schedule`.
    """

    def __init__(self, schedule: LrSchedule) -> None:
        self.schedule = schedule
        self.display_name = "LrUpdaterHook"
        self.base_lr: dict[str, list[float]] = {}

    def before_run(self, runner: Runner) -> None:
        for name, opt in optimizers_of(runner.optimizer).items():
            self.base_lr[name] = init_base_lrs(opt, self.schedule)

    def current_lrs(self, runner: Runner) -> dict[str, list[float]]:
        """The lrs this hook sets at the runner's current epoch and iteration."""
        iters_per_epoch = self.iters_per_epoch(runner)
        out = {}
        for name, bases in self.base_lr.items():
            out[name] = [
                lr_at(
                    self.schedule,
                    base,
                    epoch=runner.epoch,
                    iter=runner.iter,
                    max_epochs=runner.max_epochs,
                    max_iters=runner.max_iters,
                    iters_per_epoch=iters_per_epoch,
                )
                for base in bases
            ]
        return out

    def before_train_iter(self, runner: Runner) -> None:
        if not self.base_lr:
            self.before_run(runner)
        opts = optimizers_of(runner.optimizer)
        for name, lrs in self.current_lrs(runner).items():
            apply_lr(opts[name], lrs)


def _factory(policy: str) -> Callable[..., LrUpdaterHook]:
    def build(**kwargs: Any) -> LrUpdaterHook:
        hook = LrUpdaterHook(build_lr_schedule(dict(policy=policy, **kwargs)))
        hook.display_name = policy_hook_name(policy, "Lr")  # the hook table shows MMCV's class name
        return hook

    build.__name__ = policy_hook_name(policy, "Lr")
    build.__doc__ = f"``LrUpdaterHook`` with the {policy!r} lr policy (MMCV's name)."
    return build


for _policy in POLICIES:
    HOOKS.register_module(name=policy_hook_name(_policy, "Lr"), module=_factory(_policy))
