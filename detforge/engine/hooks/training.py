"""The default training hooks from a v2 config's sections, with MMCV's priorities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detforge.engine.hooks.base import policy_hook_name
from detforge.engine.protocols import Runner
from detforge.errors import ConfigError
from detforge.registry import HOOKS, build_module

__all__ = ["register_training_hooks"]


def register_training_hooks(
    runner: Runner,
    lr_config: Mapping[str, Any] | None,
    optimizer_config: Mapping[str, Any] | None = None,
    checkpoint_config: Mapping[str, Any] | None = None,
    log_config: Mapping[str, Any] | None = None,
    momentum_config: Mapping[str, Any] | None = None,
    timer_config: Mapping[str, Any] | None = None,
    custom_hooks_config: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
) -> None:
    """Build and register on ``runner`` the hooks of ``lr_config`` (``VERY_HIGH``),
    ``momentum_config`` (``HIGH``), ``optimizer_config`` (``ABOVE_NORMAL``),
    ``checkpoint_config`` (``NORMAL``), the timer (``LOW``), ``log_config.hooks``
    (``VERY_LOW``) and ``custom_hooks`` (their own ``priority``, default ``NORMAL``).

    ``policy='step'`` names the hook ``StepLrUpdaterHook`` (``StepMomentumUpdaterHook``)
    as in MMCV; ``checkpoint_config.meta`` (tools/train.py's) is not a hook argument.

    Example:
        >>> import torch
        >>> from detforge.engine.runner import EpochBasedRunner
        >>> runner = EpochBasedRunner(torch.nn.Linear(1, 1), max_epochs=1)
        >>> register_training_hooks(runner, dict(policy='step', step=[1]))
        >>> [getattr(h, 'display_name', type(h).__name__) for h in runner.hooks]
        ['StepLrUpdaterHook', 'IterTimerHook']
    """
    if timer_config is None:
        timer_config = dict(type="IterTimerHook")
    if lr_config is not None:
        cfg = dict(lr_config)
        if "policy" not in cfg:
            raise ConfigError("lr_config: missing key 'policy'")
        policy = cfg.pop("policy")
        cfg["type"] = policy_hook_name(policy, "Lr") if isinstance(policy, str) else policy
        runner.register_hook(build_module(cfg, HOOKS, path="lr_config"), "VERY_HIGH")
    if momentum_config is not None:
        cfg = dict(momentum_config)
        policy = cfg.pop("policy", None)
        if policy is not None:
            cfg["type"] = (
                policy_hook_name(policy, "Momentum") if isinstance(policy, str) else policy
            )
        runner.register_hook(build_module(cfg, HOOKS, path="momentum_config"), "HIGH")
    if optimizer_config is not None:
        cfg = dict(optimizer_config)
        cfg.setdefault("type", "OptimizerHook")
        runner.register_hook(build_module(cfg, HOOKS, path="optimizer_config"), "ABOVE_NORMAL")
    if checkpoint_config is not None:
        cfg = dict(checkpoint_config)
        cfg.setdefault("type", "CheckpointHook")
        cfg.pop("meta", None)  # tools/train.py's extra meta; kept in runner.meta
        runner.register_hook(build_module(cfg, HOOKS, path="checkpoint_config"), "NORMAL")
    runner.register_hook(build_module(dict(timer_config), HOOKS, path="timer_config"), "LOW")
    if log_config is not None:
        interval = log_config.get("interval", 10)
        for i, info in enumerate(log_config.get("hooks", [])):
            cfg = dict(info)
            cfg.setdefault("interval", interval)
            hook = build_module(cfg, HOOKS, path=f"log_config.hooks[{i}]")
            runner.register_hook(hook, "VERY_LOW")
    if custom_hooks_config is not None:
        items = (
            [custom_hooks_config]
            if isinstance(custom_hooks_config, Mapping)
            else list(custom_hooks_config)
        )
        for item in items:
            runner.register_hook_from_cfg(item)
