"""Optimizer hooks: backward, gradient clipping and the optimizer step after each iteration."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim import Optimizer

from detforge.engine.hooks.base import Hook
from detforge.engine.optim import clip_grads
from detforge.engine.protocols import Runner
from detforge.registry import HOOKS

__all__ = ["Fp16OptimizerHook", "GradientCumulativeOptimizerHook", "OptimizerHook"]


def _params(runner: Runner) -> list[torch.nn.Parameter]:
    return [p for p in runner.model.parameters() if p.requires_grad]


def _optimizer(runner: Runner, hook: object) -> Optimizer:
    """The runner's optimizer; these hooks step one (several need a hook of their own)."""
    optimizer = runner.optimizer
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"{type(hook).__name__} steps one torch Optimizer; runner.optimizer is "
            f"{type(optimizer).__name__}"
        )
    return optimizer


@HOOKS.register_module()
class OptimizerHook(Hook):
    """``zero_grad``; ``loss.backward()``; optional clipping (``grad_norm`` is logged); ``step``.

    Args:
        grad_clip: ``dict(max_norm=..., norm_type=2)`` or None.
        detect_anomalous_params: Accepted for v2 configs; unused.
    """

    def __init__(
        self, grad_clip: Mapping[str, Any] | None = None, detect_anomalous_params: bool = False
    ) -> None:
        self.grad_clip = dict(grad_clip) if grad_clip is not None else None
        self.detect_anomalous_params = detect_anomalous_params

    def _clip(self, runner: Runner) -> None:
        if self.grad_clip is None:
            return
        norm = clip_grads(_params(runner), self.grad_clip)
        if norm is not None:
            runner.log_buffer.update({"grad_norm": float(norm)}, runner.outputs["num_samples"])

    def after_train_iter(self, runner: Runner) -> None:
        optimizer = _optimizer(runner, self)
        optimizer.zero_grad()
        runner.outputs["loss"].backward()
        runner.call_hook("after_backward")
        self._clip(runner)
        optimizer.step()


@HOOKS.register_module()
class GradientCumulativeOptimizerHook(OptimizerHook):
    """Accumulate gradients over ``cumulative_iters`` iterations, then clip and step.

    The loss is divided by the number of iterations in the current group; the last group may
    be shorter when ``max_iters`` is not a multiple (MMCV's rule).
    """

    def __init__(
        self,
        cumulative_iters: int = 1,
        grad_clip: Mapping[str, Any] | None = None,
        detect_anomalous_params: bool = False,
    ) -> None:
        if not isinstance(cumulative_iters, int) or cumulative_iters < 1:
            raise ValueError(f"cumulative_iters must be a positive int, got {cumulative_iters!r}")
        super().__init__(grad_clip=grad_clip, detect_anomalous_params=detect_anomalous_params)
        self.cumulative_iters = cumulative_iters

    def _factor(self, runner: Runner) -> int:
        max_iters = runner.max_iters
        if max_iters is None:
            raise RuntimeError(f"{type(self).__name__} needs the runner's max_iters")
        divisible = max_iters // self.cumulative_iters * self.cumulative_iters
        if runner.iter < divisible:
            return self.cumulative_iters
        return max_iters - divisible

    def before_run(self, runner: Runner) -> None:
        _optimizer(runner, self).zero_grad()

    def after_train_iter(self, runner: Runner) -> None:
        optimizer = _optimizer(runner, self)
        loss = runner.outputs["loss"] / self._factor(runner)
        loss.backward()
        runner.call_hook("after_backward")
        if self.every_n_iters(runner, self.cumulative_iters) or self.is_last_iter(runner):
            self._clip(runner)
            optimizer.step()
            optimizer.zero_grad()


@HOOKS.register_module()
class Fp16OptimizerHook(OptimizerHook):
    """Mixed precision: the forward runs under ``torch.autocast``, the backward uses a
    ``GradScaler`` (CUDA; on CPU autocast uses bfloat16 and no scaler is needed).

    ``loss_scale`` is ``'dynamic'``, a number (the initial scale, kept fixed: growth disabled)
    or a dict of ``GradScaler`` arguments. The scaler state is saved under
    ``meta['fp16']['loss_scaler']`` and restored on resume.
    """

    def __init__(
        self,
        grad_clip: Mapping[str, Any] | None = None,
        coalesce: bool = True,
        bucket_size_mb: int = -1,
        loss_scale: float | str | Mapping[str, Any] = 512.0,
        distributed: bool = True,
    ) -> None:
        super().__init__(grad_clip=grad_clip)
        self.coalesce = coalesce
        self.bucket_size_mb = bucket_size_mb
        self.distributed = distributed
        if loss_scale == "dynamic":
            self._scaler_args: dict[str, Any] = {}
        elif isinstance(loss_scale, int | float):
            self._scaler_args = dict(init_scale=float(loss_scale), growth_interval=2**31 - 1)
        elif isinstance(loss_scale, Mapping):
            self._scaler_args = dict(loss_scale)
        else:
            raise ValueError(
                f"fp16.loss_scale must be 'dynamic', a number or a dict: {loss_scale!r}"
            )
        self.scaler: torch.amp.GradScaler | None = None
        self._autocast: contextlib.ExitStack | None = None  # entered in before_train_iter

    def before_run(self, runner: Runner) -> None:
        device = next(runner.model.parameters()).device.type
        self._device = device
        scaler = torch.amp.GradScaler(device, enabled=device == "cuda", **self._scaler_args)
        state = ((runner.meta or {}).get("fp16") or {}).get("loss_scaler")
        if state:
            scaler.load_state_dict(state)
        self.scaler = runner.scaler = scaler

    def before_train_iter(self, runner: Runner) -> None:
        dtype = torch.float16 if self._device == "cuda" else torch.bfloat16
        self._autocast = contextlib.ExitStack()
        self._autocast.enter_context(torch.autocast(self._device, dtype=dtype))

    def after_train_iter(self, runner: Runner) -> None:
        if self._autocast is not None:
            with contextlib.suppress(Exception):
                self._autocast.close()
            self._autocast = None
        optimizer, scaler = _optimizer(runner, self), self.scaler
        assert scaler is not None, "before_run creates the scaler"
        optimizer.zero_grad()
        scaler.scale(runner.outputs["loss"]).backward()
        runner.call_hook("after_backward")
        if self.grad_clip is not None:
            scaler.unscale_(optimizer)
            self._clip(runner)
        scaler.step(optimizer)
        scaler.update()
