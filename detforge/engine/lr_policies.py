"""Learning-rate policies of MMCV 1.x's ``lr_config``, as pure functions of the training position.

Each policy is a small object whose ``get_lr`` maps ``(base_lr, epoch, iter, ...)`` to the
"regular" learning rate MMCV's ``<Policy>LrUpdaterHook`` would compute there, and whose
``get_warmup_lr`` applies the optional warmup on top. Nothing here touches an optimizer; see
:mod:`detforge.engine.lr` for building a policy from a config and applying it.

Progress conventions (as in MMCV): with ``by_epoch=True`` the progress is the 0-based epoch
(``runner.epoch``) and the length is ``max_epochs``; otherwise it is the global 0-based
iteration and the length is ``max_iters``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

from detforge.errors import ConfigError
from detforge.registry import LR_SCHEDULES

__all__ = [
    "CosineAnnealingLr",
    "CosineRestartLr",
    "ExpLr",
    "FixedLr",
    "FlatCosineAnnealingLr",
    "InvLr",
    "LinearAnnealingLr",
    "LrSchedule",
    "PolyLr",
    "StepLr",
    "annealing_cos",
    "annealing_linear",
]

_WARMUP_TYPES = ("constant", "linear", "exp")


def annealing_cos(start: float, end: float, factor: float, weight: float = 1.0) -> float:
    """Cosine interpolation from ``weight * start + (1 - weight) * end`` (factor 0) to ``end`` (1).

    Example:
        >>> annealing_cos(1.0, 0.0, 0.5)
        0.5
    """
    return end + 0.5 * weight * (start - end) * (math.cos(math.pi * factor) + 1)


def annealing_linear(start: float, end: float, factor: float) -> float:
    """Linear interpolation from ``start`` (factor 0) to ``end`` (factor 1).

    Example:
        >>> annealing_linear(1.0, 0.0, 0.25)
        0.75
    """
    return start + (end - start) * factor


def _anneal_func(strategy: str, policy: str) -> Callable[[float, float, float], float]:
    if strategy == "cos":
        return annealing_cos
    if strategy == "linear":
        return annealing_linear
    raise ConfigError(
        f"lr_config (policy {policy!r}): anneal_strategy must be 'cos' or 'linear', "
        f"got {strategy!r}"
    )


def _target(base_lr: float, min_lr: float | None, min_lr_ratio: float | None) -> float:
    return base_lr * min_lr_ratio if min_lr_ratio is not None else float(min_lr or 0.0)


def _check_min_lr(policy: str, min_lr: float | None, min_lr_ratio: float | None) -> None:
    if (min_lr is None) == (min_lr_ratio is None):
        raise ConfigError(
            f"lr_config (policy {policy!r}): give exactly one of min_lr and min_lr_ratio, "
            f"got min_lr={min_lr!r}, min_lr_ratio={min_lr_ratio!r}"
        )


class LrSchedule:
    """Base of all policies: holds ``by_epoch`` and the warmup settings.

    Args:
        by_epoch: Progress counts epochs (lr changes at epoch starts) instead of iterations.
        warmup: ``None``, ``'constant'``, ``'linear'`` or ``'exp'``.
        warmup_iters: Warmup length in iterations (in epochs when ``warmup_by_epoch``).
        warmup_ratio: Lr factor at the first warmup iteration, in ``(0, 1]``.
        warmup_by_epoch: ``warmup_iters`` counts epochs.
    """

    policy = ""
    #: warmup scales the base lr instead of the regular one (YOLOX)
    warmup_from_base_lr: ClassVar[bool] = False

    def __init__(
        self,
        *,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        if warmup is not None:
            if warmup not in _WARMUP_TYPES:
                raise ConfigError(
                    f"lr_config: warmup={warmup!r} is not supported; use one of "
                    f"{', '.join(map(repr, _WARMUP_TYPES))} or None"
                )
            if not warmup_iters > 0:
                raise ConfigError(f"lr_config: warmup_iters must be > 0, got {warmup_iters!r}")
            if not 0 < warmup_ratio <= 1.0:
                raise ConfigError(
                    f"lr_config: warmup_ratio must be in (0, 1], got {warmup_ratio!r}"
                )
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.warmup_by_epoch = warmup_by_epoch

    def initial_lrs(self, group_lrs: Sequence[float]) -> list[float]:
        """Base lr per param group given the optimizer's configured lrs (MMCV ``initial_lr``)."""
        return [float(lr) for lr in group_lrs]

    def num_warmup_iters(self, iters_per_epoch: int | None = None) -> int:
        """Warmup length in iterations (``warmup_iters * iters_per_epoch`` when by epoch)."""
        if not self.warmup_by_epoch:
            return self.warmup_iters
        if iters_per_epoch is None:
            raise ConfigError("lr_config: warmup_by_epoch=True needs iters_per_epoch")
        return self.warmup_iters * iters_per_epoch

    def get_warmup_lr(
        self, cur_iters: int, regular_lr: float, iters_per_epoch: int | None = None
    ) -> float:
        """The warmed-up lr at global iteration ``cur_iters`` (no range check; see ``lr_at``).

        Example:
            >>> s = FixedLr(warmup='linear', warmup_iters=10, warmup_ratio=0.1)
            >>> round(s.get_warmup_lr(5, 1.0), 6)
            0.55
        """
        if self.warmup is None:
            return regular_lr
        n = self.num_warmup_iters(iters_per_epoch)
        if self.warmup == "constant":
            return regular_lr * self.warmup_ratio
        if self.warmup == "linear":
            k = (1 - cur_iters / n) * (1 - self.warmup_ratio)
            return regular_lr * (1 - k)
        factor: float = self.warmup_ratio ** (1 - cur_iters / n)  # typeshed: float ** float is Any
        return regular_lr * factor

    def get_lr(
        self,
        base_lr: float,
        epoch: int = 0,
        iter: int = 0,
        max_epochs: int | None = None,
        max_iters: int | None = None,
        iters_per_epoch: int | None = None,
    ) -> float:
        """The regular (un-warmed) lr at this point of training."""
        max_iters = _max_iters(max_epochs, max_iters, iters_per_epoch)
        return self._lr(base_lr, epoch if self.by_epoch else iter, max_epochs, max_iters, iter)

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        raise NotImplementedError

    def _length(self, max_epochs: int | None, max_iters: int | None) -> int:
        length = max_epochs if self.by_epoch else max_iters
        if not length:
            what = "max_epochs" if self.by_epoch else "max_iters"
            raise ConfigError(f"lr policy {self.policy!r} needs {what} (got {length!r})")
        return length

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _max_iters(
    max_epochs: int | None, max_iters: int | None, iters_per_epoch: int | None
) -> int | None:
    if max_iters is None and max_epochs is not None and iters_per_epoch is not None:
        return max_epochs * iters_per_epoch
    return max_iters


@LR_SCHEDULES.register_module(name="Fixed")
class FixedLr(LrSchedule):
    """Constant lr (only warmup changes it)."""

    policy = "Fixed"

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        return base_lr


@LR_SCHEDULES.register_module(name="Step")
class StepLr(LrSchedule):
    """``base_lr * gamma ** k``, ``k`` = milestones passed (or ``progress // step``), >= min_lr.

    Example:
        >>> s = StepLr(step=[8, 11])
        >>> [round(s.get_lr(1.0, epoch=e), 6) for e in (7, 8, 11)]
        [1.0, 0.1, 0.01]
    """

    policy = "Step"

    def __init__(
        self,
        *,
        step: int | list[int],
        gamma: float = 0.1,
        min_lr: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        steps = [step] if isinstance(step, int) else list(step)
        if isinstance(step, bool) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in steps
        ):
            raise ConfigError(
                f"lr_config: step must be a positive int or list of them, got {step!r}"
            )
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.step = step
        self.gamma = gamma
        self.min_lr = min_lr

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        if isinstance(self.step, int):
            exp = progress // self.step
        else:
            exp = next((i for i, s in enumerate(self.step) if progress < s), len(self.step))
        lr = base_lr * self.gamma**exp
        return lr if self.min_lr is None else max(lr, self.min_lr)


@LR_SCHEDULES.register_module(name="Exp")
class ExpLr(LrSchedule):
    """``base_lr * gamma ** progress``."""

    policy = "Exp"

    def __init__(
        self,
        *,
        gamma: float,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.gamma = gamma

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        return base_lr * self.gamma**progress


@LR_SCHEDULES.register_module(name="Poly")
class PolyLr(LrSchedule):
    """``(base_lr - min_lr) * (1 - progress / length) ** power + min_lr``."""

    policy = "Poly"

    def __init__(
        self,
        *,
        power: float = 1.0,
        min_lr: float = 0.0,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.power = power
        self.min_lr = min_lr

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        coeff: float = (1 - progress / self._length(max_epochs, max_iters)) ** self.power
        return (base_lr - self.min_lr) * coeff + self.min_lr


@LR_SCHEDULES.register_module(name="Inv")
class InvLr(LrSchedule):
    """``base_lr * (1 + gamma * progress) ** -power``."""

    policy = "Inv"

    def __init__(
        self,
        *,
        gamma: float,
        power: float = 1.0,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.gamma = gamma
        self.power = power

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        factor: float = (1 + self.gamma * progress) ** (-self.power)
        return base_lr * factor


class _MinLrSchedule(LrSchedule):
    """Shared constructor of the policies that anneal towards ``min_lr`` / ``min_lr_ratio``."""

    def __init__(
        self,
        *,
        min_lr: float | None = None,
        min_lr_ratio: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        _check_min_lr(self.policy, min_lr, min_lr_ratio)
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio


@LR_SCHEDULES.register_module(name="CosineAnnealing")
class CosineAnnealingLr(_MinLrSchedule):
    """Half-cosine from ``base_lr`` (progress 0) to the target lr (progress = length).

    Example:
        >>> s = CosineAnnealingLr(min_lr_ratio=0.0)
        >>> s.get_lr(1.0, epoch=6, max_epochs=12)
        0.5
    """

    policy = "CosineAnnealing"

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        target = _target(base_lr, self.min_lr, self.min_lr_ratio)
        return annealing_cos(base_lr, target, progress / self._length(max_epochs, max_iters))


@LR_SCHEDULES.register_module(name="LinearAnnealing")
class LinearAnnealingLr(_MinLrSchedule):
    """Straight line from ``base_lr`` (progress 0) to the target lr (progress = length)."""

    policy = "LinearAnnealing"

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        target = _target(base_lr, self.min_lr, self.min_lr_ratio)
        return annealing_linear(base_lr, target, progress / self._length(max_epochs, max_iters))


@LR_SCHEDULES.register_module(name="FlatCosineAnnealing")
class FlatCosineAnnealingLr(LrSchedule):
    """``base_lr`` until ``round(length * start_percent)``, then cosine to the target lr."""

    policy = "FlatCosineAnnealing"

    def __init__(
        self,
        *,
        start_percent: float = 0.75,
        min_lr: float | None = None,
        min_lr_ratio: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        _check_min_lr(self.policy, min_lr, min_lr_ratio)
        if not isinstance(start_percent, float) or not 0 <= start_percent <= 1:
            raise ConfigError(
                f"lr_config: start_percent must be a float in [0, 1], got {start_percent!r}"
            )
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.start_percent = start_percent
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        length = self._length(max_epochs, max_iters)
        start = round(length * self.start_percent)
        if progress < start:
            return base_lr
        target = _target(base_lr, self.min_lr, self.min_lr_ratio)
        return annealing_cos(base_lr, target, (progress - start) / (length - start))


@LR_SCHEDULES.register_module(name="CosineRestart")
class CosineRestartLr(LrSchedule):
    """Cosine annealing restarted at the end of each of ``periods``, scaled by restart weights.

    Example:
        >>> s = CosineRestartLr(periods=[4, 4], restart_weights=[1, 0.5], min_lr=0.0)
        >>> [round(s.get_lr(1.0, epoch=e), 4) for e in (0, 2, 4, 6)]
        [1.0, 0.5, 0.5, 0.25]
    """

    policy = "CosineRestart"

    def __init__(
        self,
        *,
        periods: list[int],
        restart_weights: Sequence[float] = (1,),
        min_lr: float | None = None,
        min_lr_ratio: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        _check_min_lr(self.policy, min_lr, min_lr_ratio)
        if len(periods) != len(restart_weights):
            raise ConfigError(
                f"lr_config: periods {list(periods)} and restart_weights {list(restart_weights)} "
                "must have the same length"
            )
        super().__init__(
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.periods = list(periods)
        self.restart_weights = list(restart_weights)
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio
        self._ends = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]

    def _lr(
        self, base_lr: float, progress: int, max_epochs: int | None, max_iters: int | None, it: int
    ) -> float:
        idx = next((i for i, end in enumerate(self._ends) if progress < end), None)
        if idx is None:
            raise ValueError(
                f"CosineRestart: progress {progress} is past the last period end {self._ends[-1]}"
            )
        start = 0 if idx == 0 else self._ends[idx - 1]
        alpha = min((progress - start) / self.periods[idx], 1)
        target = _target(base_lr, self.min_lr, self.min_lr_ratio)
        return annealing_cos(base_lr, target, alpha, self.restart_weights[idx])
