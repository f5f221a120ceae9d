"""The :class:`Hook` base class (one no-op method per runner stage) and helpers shared by
the lr and momentum hooks."""

from __future__ import annotations

from collections.abc import Mapping

from torch.optim import Optimizer

from detforge.engine.protocols import OptimizerArg, Runner

__all__ = ["STAGES", "Hook", "optimizers_of", "policy_hook_name"]

_POLICY_KINDS = ("Lr", "Momentum")

STAGES = (
    "before_run",
    "before_train_epoch",
    "before_train_iter",
    "after_backward",
    "after_train_iter",
    "after_train_epoch",
    "before_val_epoch",
    "before_val_iter",
    "after_val_iter",
    "after_val_epoch",
    "after_run",
)

# stage -> the mode-independent method it falls back to
_GENERIC = {
    "before_train_epoch": "before_epoch",
    "before_val_epoch": "before_epoch",
    "after_train_epoch": "after_epoch",
    "after_val_epoch": "after_epoch",
    "before_train_iter": "before_iter",
    "before_val_iter": "before_iter",
    "after_train_iter": "after_iter",
    "after_val_iter": "after_iter",
}


class Hook:
    """Base of all hooks. ``before_train_epoch`` and ``before_val_epoch`` call ``before_epoch``
    unless overridden (same for ``after_*`` and ``*_iter``), as MMCV's hooks do.

    The runner passes itself to every method; :class:`~detforge.engine.protocols.Runner` states
    what a hook may use of it. Helpers such as :meth:`every_n_epochs` read its counters.
    """

    priority: int = 50

    def before_run(self, runner: Runner) -> None:
        pass

    def after_run(self, runner: Runner) -> None:
        pass

    def before_epoch(self, runner: Runner) -> None:
        pass

    def after_epoch(self, runner: Runner) -> None:
        pass

    def before_iter(self, runner: Runner) -> None:
        pass

    def after_iter(self, runner: Runner) -> None:
        pass

    def after_backward(self, runner: Runner) -> None:
        pass

    def before_train_epoch(self, runner: Runner) -> None:
        self.before_epoch(runner)

    def before_val_epoch(self, runner: Runner) -> None:
        self.before_epoch(runner)

    def after_train_epoch(self, runner: Runner) -> None:
        self.after_epoch(runner)

    def after_val_epoch(self, runner: Runner) -> None:
        self.after_epoch(runner)

    def before_train_iter(self, runner: Runner) -> None:
        self.before_iter(runner)

    def before_val_iter(self, runner: Runner) -> None:
        self.before_iter(runner)

    def after_train_iter(self, runner: Runner) -> None:
        self.after_iter(runner)

    def after_val_iter(self, runner: Runner) -> None:
        self.after_iter(runner)

    # --- counters -------------------------------------------------------------------------
    @staticmethod
    def every_n_epochs(runner: Runner, n: int) -> bool:
        """True after every ``n``-th completed epoch (``runner.epoch`` is 0-based)."""
        return n > 0 and (runner.epoch + 1) % n == 0

    @staticmethod
    def every_n_inner_iters(runner: Runner, n: int) -> bool:
        """True on every ``n``-th iteration of the current epoch."""
        return n > 0 and (runner.inner_iter + 1) % n == 0

    @staticmethod
    def every_n_iters(runner: Runner, n: int) -> bool:
        """True on every ``n``-th global iteration."""
        return n > 0 and (runner.iter + 1) % n == 0

    @staticmethod
    def iters_per_epoch(runner: Runner) -> int | None:
        """Batches in the current phase's loader (None before the first phase)."""
        return len(runner.data_loader) if runner.data_loader is not None else None

    @staticmethod
    def end_of_epoch(runner: Runner) -> bool:
        """True on the last iteration of the current epoch."""
        return runner.inner_iter + 1 == Hook.iters_per_epoch(runner)

    @staticmethod
    def is_last_epoch(runner: Runner) -> bool:
        """True in the last epoch of training."""
        return runner.epoch + 1 == runner.max_epochs

    @staticmethod
    def is_last_iter(runner: Runner) -> bool:
        """True on the last iteration of training."""
        return runner.iter + 1 == runner.max_iters

    def triggered_stages(self) -> list[str]:
        """The stages this hook's class overrides (directly or via the generic method)."""
        out = []
        for stage in STAGES:
            generic = _GENERIC.get(stage)
            mine = getattr(type(self), stage) is not getattr(Hook, stage)
            via = generic is not None and getattr(type(self), generic) is not getattr(Hook, generic)
            if mine or via:
                out.append(stage)
        return out


def policy_hook_name(policy: str, kind: str) -> str:
    """The hook name MMCV registers an ``lr_config`` (``kind='Lr'``) or ``momentum_config``
    (``kind='Momentum'``) ``policy`` under: a lower-case policy is title-cased.

    Example:
        >>> policy_hook_name('step', 'Lr'), policy_hook_name('CosineAnnealing', 'Momentum')
        ('StepLrUpdaterHook', 'CosineAnnealingMomentumUpdaterHook')
    """
    if kind not in _POLICY_KINDS:
        raise ValueError(f"policy_hook_name: kind must be one of {_POLICY_KINDS}, got {kind!r}")
    name = policy.title() if policy == policy.lower() else policy
    return f"{name}{kind}UpdaterHook"


def optimizers_of(optimizer: OptimizerArg | None) -> dict[str, Optimizer]:
    """The runner's optimizers by name: ``{'': optimizer}`` for one, a copy of the dict for
    several (MMCV's ``optimizer=dict(generator=..., discriminator=...)``).

    Raises:
        TypeError: ``optimizer`` is neither an ``Optimizer`` nor a dict.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> list(optimizers_of(opt)), list(optimizers_of(dict(a=opt, b=opt)))
        ([''], ['a', 'b'])
    """
    if isinstance(optimizer, Optimizer):
        return {"": optimizer}
    if isinstance(optimizer, Mapping):
        return dict(optimizer)
    raise TypeError(
        f"runner.optimizer must be a torch Optimizer or a dict of them, got {optimizer!r}"
    )
