"""Checks and helpers: ``NumClassCheckHook``, ``CheckInvalidLossHook``, ``DistSamplerSeedHook``,
``EMAHook`` and ``ExpMomentumEMAHook``."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from detforge.engine.hooks.base import Hook
from detforge.errors import ConfigError
from detforge.registry import HOOKS

__all__ = [
    "CheckInvalidLossHook",
    "DistSamplerSeedHook",
    "EMAHook",
    "ExpMomentumEMAHook",
    "InvalidLossError",
    "NumClassCheckHook",
]

_NO_CLASS_CHECK = ("RPNHead", "VGG", "FusedSemanticHead", "GARPNHead")


class InvalidLossError(FloatingPointError):
    """A loss became NaN or infinite."""


def _bare(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model  # type: ignore[return-value]


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Before each epoch: every module's ``num_classes`` equals ``len(dataset.CLASSES)``."""

    def _check(self, runner: Any) -> None:
        dataset = runner.data_loader.dataset
        classes = getattr(dataset, "CLASSES", None)
        if classes is None:
            warnings.warn(
                f"{type(dataset).__name__}.CLASSES is None; class count not checked", stacklevel=2
            )
            return
        if isinstance(classes, str):
            raise ConfigError(
                f"dataset CLASSES is the string {classes!r}, not a tuple; add a comma if there "
                f"is one class: CLASSES = ({classes!r},)"
            )
        for name, module in _bare(runner.model).named_modules():
            num = getattr(module, "num_classes", None)
            if num is None or type(module).__name__ in _NO_CLASS_CHECK:
                continue
            if num != len(classes):
                raise ConfigError(
                    f"num_classes={num} of {name or 'model'} ({type(module).__name__}) does not "
                    f"match the {len(classes)} CLASSES of {type(dataset).__name__}: {classes}"
                )

    def before_train_epoch(self, runner: Any) -> None:
        self._check(runner)

    def before_val_epoch(self, runner: Any) -> None:
        self._check(runner)


@HOOKS.register_module()
class CheckInvalidLossHook(Hook):
    """Every ``interval`` iterations, stop with an error if the loss is NaN or infinite.

    The message names the iteration, the non-finite loss terms and the batch's image files.
    """

    def __init__(self, interval: int = 50) -> None:
        self.interval = interval

    def after_train_iter(self, runner: Any) -> None:
        if not self.every_n_iters(runner, self.interval):
            return
        loss = runner.outputs["loss"]
        if bool(torch.isfinite(torch.as_tensor(loss)).all()):
            return
        bad = [
            k
            for k, v in runner.outputs.get("log_vars", {}).items()
            if isinstance(v, int | float) and not math.isfinite(v)
        ]
        metas = (getattr(runner, "data_batch", None) or {}).get("img_metas") or []
        files = [m.get("filename", m.get("ori_filename")) for m in metas if isinstance(m, dict)]
        raise InvalidLossError(
            f"loss became infinite or NaN at epoch {runner.epoch + 1}, iteration "
            f"{runner.iter + 1}: non-finite terms {bad or ['loss']}; images {files}"
        )


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):
    """Calls ``set_epoch(runner.epoch)`` on the loader's sampler so shuffles differ per epoch."""

    def before_epoch(self, runner: Any) -> None:
        loader = runner.data_loader
        samplers: list[Any] = [
            getattr(loader, "sampler", None),
            getattr(loader, "batch_sampler", None),
        ]
        for sampler in samplers:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(runner.epoch)
            inner: Any = getattr(sampler, "sampler", None)
            if hasattr(inner, "set_epoch"):
                inner.set_epoch(runner.epoch)


@HOOKS.register_module()
class EMAHook(Hook):
    """Exponential moving average of parameters (and buffers), MMCV's ``EMAHook``.

    ``ema = (1 - m) * ema + m * param`` every ``interval`` iterations with
    ``m = min(momentum, (1 + iter) / (warm_up + iter))``. The averages live in the model as
    ``ema_<name>`` buffers; they are swapped into the parameters after each epoch (so saved
    checkpoints and evaluation use them) and swapped back before the next.
    """

    def __init__(
        self,
        momentum: float = 0.0002,
        interval: int = 1,
        warm_up: int = 100,
        resume_from: str | None = None,
    ) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f"EMAHook: momentum must be in (0, 1), got {momentum}")
        self.momentum = momentum
        self.interval = interval
        self.warm_up = warm_up
        self.checkpoint = resume_from

    def _momentum(self, it: int) -> float:
        return min(self.momentum, (1 + it) / (self.warm_up + it))

    def before_run(self, runner: Any) -> None:
        model = _bare(runner.model)
        self.param_ema: dict[str, str] = {}
        self.model_params = dict(model.named_parameters(recurse=True))
        for name, value in self.model_params.items():
            buffer_name = f"ema_{name.replace('.', '_')}"
            self.param_ema[name] = buffer_name
            if buffer_name not in dict(model.named_buffers()):
                model.register_buffer(buffer_name, value.data.clone())
        self.model_buffers = dict(model.named_buffers(recurse=True))
        if self.checkpoint is not None:
            runner.resume(self.checkpoint)

    def after_train_iter(self, runner: Any) -> None:
        if runner.iter % self.interval != 0:
            return
        m = self._momentum(runner.iter)
        for name, param in self.model_params.items():
            ema = self.model_buffers[self.param_ema[name]]
            ema.mul_(1 - m).add_(param.data, alpha=m)

    def _swap(self) -> None:
        for name, param in self.model_params.items():
            ema = self.model_buffers[self.param_ema[name]]
            tmp = param.data.clone()
            param.data.copy_(ema.data)
            ema.data.copy_(tmp)

    def after_train_epoch(self, runner: Any) -> None:
        self._swap()

    def before_train_epoch(self, runner: Any) -> None:
        if runner.epoch > 0 or runner.iter > 0:
            self._swap()


@HOOKS.register_module()
class ExpMomentumEMAHook(EMAHook):
    """EMA with ``m = (1 - momentum) * exp(-(1 + iter) / total_iter) + momentum`` (mmdet)."""

    def __init__(
        self,
        momentum: float = 0.0002,
        total_iter: int = 2000,
        interval: int = 1,
        warm_up: int = 100,
        resume_from: str | None = None,
    ) -> None:
        super().__init__(
            momentum=momentum, interval=interval, warm_up=warm_up, resume_from=resume_from
        )
        self.total_iter = total_iter

    def _momentum(self, it: int) -> float:
        return (1 - self.momentum) * math.exp(-(1 + it) / self.total_iter) + self.momentum
