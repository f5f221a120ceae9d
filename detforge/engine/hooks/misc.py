"""Checks and helpers: ``NumClassCheckHook``, ``CheckInvalidLossHook``, ``DistSamplerSeedHook``,
``EMAHook``, ``ExpMomentumEMAHook`` and ``SetEpochInfoHook``; :func:`register_default_checks`
puts the two checks on every training run (v2 only had them when the config listed them)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from detforge.engine.hooks.base import Hook
from detforge.engine.protocols import Runner
from detforge.errors import ConfigError, InvalidLossError
from detforge.registry import HOOKS

__all__ = [
    "CheckInvalidLossHook",
    "DistSamplerSeedHook",
    "EMAHook",
    "ExpMomentumEMAHook",
    "InvalidLossError",
    "NumClassCheckHook",
    "SetEpochInfoHook",
    "register_default_checks",
]

_NO_CLASS_CHECK = ("RPNHead", "VGG", "FusedSemanticHead", "GARPNHead")


def _bare(model: torch.nn.Module) -> torch.nn.Module:
    inner = getattr(model, "module", None)  # DataParallel/DDP's detector
    return inner if isinstance(inner, torch.nn.Module) else model


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Before each epoch: every module's ``num_classes`` equals ``len(dataset.CLASSES)``.

    Modules named ``RPNHead``, ``VGG``, ``FusedSemanticHead`` and ``GARPNHead`` are skipped
    (v2). The error names the config path of the module and both numbers.
    """

    def _check(self, runner: Runner) -> None:
        dataset = getattr(runner.data_loader, "dataset", None)
        if dataset is None:
            return
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
                path = f"model.{name}" if name else "model"
                raise ConfigError(
                    f"class count mismatch: {path}.num_classes={num} ({type(module).__name__}) "
                    f"but the {runner.mode or 'train'} dataset {type(dataset).__name__} has "
                    f"{len(classes)} CLASSES {tuple(classes)}; set {path}.num_classes="
                    f"{len(classes)} or the dataset's classes"
                )

    def before_train_epoch(self, runner: Runner) -> None:
        self._check(runner)

    def before_val_epoch(self, runner: Runner) -> None:
        self._check(runner)


@HOOKS.register_module()
class CheckInvalidLossHook(Hook):
    """Every ``interval`` iterations, stop with an error if a loss is NaN or infinite.

    The message names the 1-based global iteration (and epoch/batch), every non-finite loss
    term with its value and the file names of the batch's images. It reads the ``log_vars``
    floats that ``train_step`` already computed, so checking costs nothing; registered before
    the optimizer hook (as :func:`register_default_checks` does), it stops before the step
    spreads the NaN into the weights.
    """

    def __init__(self, interval: int = 50) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"CheckInvalidLossHook: interval must be a positive int: {interval!r}")
        self.interval = interval

    def after_train_iter(self, runner: Runner) -> None:
        if not self.every_n_iters(runner, self.interval):
            return
        values = {
            k: float(v)
            for k, v in (runner.outputs.get("log_vars") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if "loss" not in values and isinstance(runner.outputs.get("loss"), torch.Tensor):
            loss = runner.outputs["loss"].detach()
            values["loss"] = float(loss.sum()) if loss.numel() else 0.0
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if not bad:
            return
        terms = [k for k in bad if k != "loss"] or bad
        batch = getattr(runner, "data_batch", None)
        metas = batch.get("img_metas", []) if isinstance(batch, dict) else []
        files = [
            str(m.get("filename") or m.get("ori_filename"))
            for m in metas
            if isinstance(m, dict) and (m.get("filename") or m.get("ori_filename"))
        ]
        where = f"iteration {runner.iter + 1} (epoch {runner.epoch + 1}"
        loader = getattr(runner, "data_loader", None)
        if loader is not None and hasattr(loader, "__len__"):
            where += f", batch {runner.inner_iter + 1}/{len(loader)}"
        raise InvalidLossError(
            f"non-finite loss at {where}): "
            + ", ".join(f"{k}={values[k]}" for k in terms)
            + f"; images in this batch: {', '.join(files) if files else '(unknown)'}. "
            "Lower optimizer.lr, add optimizer_config.grad_clip, or check these images' "
            "annotations."
        )


@HOOKS.register_module()
class SetEpochInfoHook(Hook):
    """Before each training epoch, tell the model the epoch: ``model.set_epoch(runner.epoch)``
    (0-based; v2's hook of the same name, which TOOD's configs list in ``custom_hooks``).

    Only epoch-based runs have training epochs: as in v2, whose ``IterBasedRunner`` never calls
    ``before_train_epoch`` hooks, an iteration-based run leaves the model's epoch at 0 (the
    number TOOD's golden fixture was made with).

    Raises:
        ConfigError: the model has no ``set_epoch`` method.
    """

    def before_train_epoch(self, runner: Runner) -> None:
        if runner.max_epochs is None:  # iteration-based: no epochs, as in v2
            return
        model = _bare(runner.model)
        set_epoch = getattr(model, "set_epoch", None)
        if not callable(set_epoch):
            raise ConfigError(
                f"custom_hooks: SetEpochInfoHook needs a model with set_epoch(epoch); "
                f"{type(model).__name__} has none (remove the hook from custom_hooks)"
            )
        set_epoch(runner.epoch)


def register_default_checks(runner: Runner) -> None:
    """Register ``NumClassCheckHook`` and ``CheckInvalidLossHook(interval=1)`` unless present.

    The class-count check runs before the first iteration (``before_train_epoch``); the loss
    check runs after every iteration at priority ``HIGH``, i.e. before ``OptimizerHook``.
    """
    if not any(isinstance(h, NumClassCheckHook) for h in runner.hooks):
        runner.register_hook(NumClassCheckHook(), "NORMAL")
    if not any(isinstance(h, CheckInvalidLossHook) for h in runner.hooks):
        runner.register_hook(CheckInvalidLossHook(interval=1), "HIGH")


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):
    """Calls ``set_epoch(runner.epoch)`` on the loader's sampler so shuffles differ per epoch."""

    def before_epoch(self, runner: Runner) -> None:
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

    def before_run(self, runner: Runner) -> None:
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

    def after_train_iter(self, runner: Runner) -> None:
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

    def after_train_epoch(self, runner: Runner) -> None:
        self._swap()

    def before_train_epoch(self, runner: Runner) -> None:
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
