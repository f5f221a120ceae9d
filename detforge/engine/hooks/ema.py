"""Exponential moving averages of the model: MMCV's ``EMAHook`` and MMDetection v2's
``ExpMomentumEMAHook`` / ``LinearMomentumEMAHook``.

Every averaged tensor ``name`` has a buffer ``ema_<name with '.' as '_'>`` registered on the
(unwrapped) model, so checkpoints carry the averages under v2's keys. After an update step
``ema = (1 - m) * ema + m * value``. After each training epoch the averages are swapped into
the model (evaluation and the checkpoint of that epoch see them, the ``ema_`` buffers then
hold the raw weights) and before the next epoch swapped back.

=======================  ===========================  =====================  =================
hook                     averages                     updates after iter i   momentum ``m``
=======================  ===========================  =====================  =================
``EMAHook`` (MMCV)       parameters                   ``i % interval == 0``  ``min(momentum,
                                                                             (1+i)/(warm_up+i))``
``ExpMomentumEMAHook``   the state dict (parameters   ``(i+1) % interval     ``(1 - momentum) *
                         and buffers; integer ones    == 0``                 exp(-(1+i)/total_iter)
                         are swapped, not averaged)                          + momentum``
``LinearMomentumEMAHook`` as above                    as above               ``min(momentum **
                                                                             interval, (1+i) /
                                                                             (warm_up+i))``
=======================  ===========================  =====================  =================

``skip_buffers=True`` restricts the v2 hooks to the parameters. ``resume_from`` resumes the
run from a checkpoint once the buffers exist (so its ``ema_`` entries load).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from detforge.engine.hooks.base import Hook
from detforge.engine.protocols import Runner
from detforge.registry import HOOKS
from detforge.utils.dist import unwrap_model

__all__ = ["BaseEMAHook", "EMAHook", "ExpMomentumEMAHook", "LinearMomentumEMAHook"]


class BaseEMAHook(Hook):
    """The shared mechanics (see the module docstring); subclasses give the momentum.

    Args:
        momentum: The momentum (its meaning depends on the subclass), in ``(0, 1)``.
        interval: Update every ``interval`` iterations.
        skip_buffers: Average only the parameters.
        resume_from: Checkpoint to resume the run from, after the buffers are registered.
    """

    #: the step condition: ``(iter + offset) % interval == 0``
    _step_offset = 1

    def __init__(
        self,
        momentum: float = 0.0002,
        interval: int = 1,
        skip_buffers: bool = False,
        resume_from: str | None = None,
    ) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in (0, 1), got {momentum}")
        self.momentum = momentum
        self.interval = interval
        self.skip_buffers = skip_buffers
        self.checkpoint = resume_from

    def _momentum(self, it: int) -> float:
        raise NotImplementedError

    def before_run(self, runner: Runner) -> None:
        model = unwrap_model(runner.model)
        tensors: dict[str, torch.Tensor] = (
            {name: p.data for name, p in model.named_parameters()}
            if self.skip_buffers
            else dict(model.state_dict())
        )
        self.ema: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, value in tensors.items():
            if name.startswith("ema_"):
                continue  # a second run of the same model: its averages are not averaged
            buffer_name = f"ema_{name.replace('.', '_')}"
            model.register_buffer(buffer_name, value.detach().clone())
            self.ema[name] = (value, getattr(model, buffer_name))
        if self.checkpoint is not None:
            runner.resume(self.checkpoint)

    def after_train_iter(self, runner: Runner) -> None:
        if (runner.iter + self._step_offset) % self.interval != 0:
            return
        m = self._momentum(runner.iter)
        for value, ema in self.ema.values():
            if value.dtype.is_floating_point:
                ema.mul_(1 - m).add_(value.detach(), alpha=m)

    def _swap(self) -> None:
        for value, ema in self.ema.values():
            tmp = value.detach().clone()
            value.data.copy_(ema)
            ema.copy_(tmp)

    def after_train_epoch(self, runner: Runner) -> None:
        self._swap()

    def before_train_epoch(self, runner: Runner) -> None:
        self._swap()


@HOOKS.register_module()
class EMAHook(BaseEMAHook):
    """MMCV's EMA of the parameters with a linear warm-up of the momentum.

    Args:
        momentum: The largest momentum.
        interval: Update every ``interval`` iterations (from iteration 0).
        warm_up: Warm-up length of the momentum.
        resume_from: Checkpoint to resume from.
    """

    _step_offset = 0

    def __init__(
        self,
        momentum: float = 0.0002,
        interval: int = 1,
        warm_up: int = 100,
        resume_from: str | None = None,
    ) -> None:
        super().__init__(
            momentum=momentum, interval=interval, skip_buffers=True, resume_from=resume_from
        )
        self.warm_up = warm_up

    def _momentum(self, it: int) -> float:
        return min(self.momentum, (1 + it) / (self.warm_up + it))


@HOOKS.register_module()
class ExpMomentumEMAHook(BaseEMAHook):
    """v2's EMA with ``m = (1 - momentum) * exp(-(1 + iter) / total_iter) + momentum``
    (YOLOX's configs: ``momentum=0.0001``).

    Args:
        total_iter: Decay length of the momentum.
        **kwargs: :class:`BaseEMAHook`'s arguments.

    Example:
        >>> round(ExpMomentumEMAHook(momentum=0.0001)._momentum(0), 6)
        0.9995
    """

    def __init__(self, total_iter: int = 2000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.total_iter = total_iter

    def _momentum(self, it: int) -> float:
        return (1 - self.momentum) * math.exp(-(1 + it) / self.total_iter) + self.momentum


@HOOKS.register_module()
class LinearMomentumEMAHook(BaseEMAHook):
    """v2's EMA with ``m = min(momentum ** interval, (1 + iter) / (warm_up + iter))``.

    Args:
        warm_up: Warm-up length of the momentum.
        **kwargs: :class:`BaseEMAHook`'s arguments.
    """

    def __init__(self, warm_up: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warm_up = warm_up

    def _momentum(self, it: int) -> float:
        return min(self.momentum**self.interval, (1 + it) / (self.warm_up + it))
