"""MMCV 1.x style runners: ``EpochBasedRunner``, ``IterBasedRunner`` and ``build_runner``.

A runner loops over the workflow phases, calls ``model.train_step`` per batch and the hooks
at each stage (``before_run``, ``before_train_epoch``, ``before_train_iter``,
``after_backward``, ``after_train_iter``, ... ``after_run``), sorted by priority.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.engine.checkpoint import load_checkpoint as _load_checkpoint
from detforge.engine.checkpoint_save import save_checkpoint as _save_checkpoint
from detforge.engine.hooks import STAGES, Hook, LogBuffer, get_priority, lr_hook_name
from detforge.engine.hooks.priority import Priority
from detforge.errors import ConfigError
from detforge.registry import HOOKS, build_module

__all__ = ["EpochBasedRunner", "IterBasedRunner", "build_runner"]

_LOG = logging.getLogger("detforge")


class _BaseRunner:
    def __init__(
        self,
        model: nn.Module,
        optimizer: Any = None,
        work_dir: str | None = None,
        logger: logging.Logger | None = None,
        meta: dict[str, Any] | None = None,
        max_epochs: int | None = None,
        max_iters: int | None = None,
    ) -> None:
        if max_epochs is not None and max_iters is not None:
            raise ConfigError("runner: give max_epochs or max_iters, not both")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"runner: meta must be a dict, got {type(meta).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.work_dir = os.path.abspath(work_dir) if work_dir is not None else None
        if self.work_dir is not None:
            os.makedirs(self.work_dir, exist_ok=True)
        self.logger = logger or _LOG
        self.meta = meta
        self.timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
        self.mode: str | None = None
        self.hooks: list[Hook] = []
        self.log_buffer = LogBuffer()
        self.outputs: dict[str, Any] = {}
        self.data_loader: Any = None
        self.data_batch: Any = None
        self.scaler: Any = None
        self._epoch = 0
        self._iter = 0
        self._inner_iter = 0
        self._max_epochs = max_epochs
        self._max_iters = max_iters

    # --- counters ---------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Completed epochs (0-based index of the current one)."""
        return self._epoch

    @property
    def iter(self) -> int:
        """Completed training iterations."""
        return self._iter

    @property
    def inner_iter(self) -> int:
        """Index of the iteration within the current epoch."""
        return self._inner_iter

    @property
    def max_epochs(self) -> int | None:
        """Training length in epochs (epoch runner)."""
        return self._max_epochs

    @property
    def max_iters(self) -> int | None:
        """Training length in iterations."""
        return self._max_iters

    # --- hooks ------------------------------------------------------------------------------
    def register_hook(self, hook: Hook, priority: int | str | Priority = "NORMAL") -> None:
        """Insert ``hook`` after the hooks of equal or higher priority."""
        if not isinstance(hook, Hook):
            raise TypeError(f"register_hook: {hook!r} is not a Hook")
        if hasattr(hook, "priority") and "priority" in vars(hook):
            raise ValueError(f"register_hook: {type(hook).__name__} is already registered")
        hook.priority = get_priority(priority)
        index = len(self.hooks)
        for i in range(len(self.hooks) - 1, -1, -1):
            if hook.priority >= self.hooks[i].priority:
                index = i + 1
                break
            index = i
        self.hooks.insert(index, hook)

    def register_hook_from_cfg(self, cfg: Mapping[str, Any]) -> None:
        """Build a hook from ``dict(type=..., priority=..., **args)`` and register it."""
        cfg = dict(cfg)
        priority = cfg.pop("priority", "NORMAL")
        self.register_hook(build_module(cfg, HOOKS, path="custom_hooks"), priority=priority)

    def call_hook(self, fn_name: str) -> None:
        """Call ``fn_name(self)`` on every hook in priority order."""
        if fn_name not in STAGES:
            raise ValueError(f"call_hook: unknown stage {fn_name!r}; stages: {', '.join(STAGES)}")
        for hook in self.hooks:
            getattr(hook, fn_name)(self)

    def get_hook_info(self) -> str:
        """The hooks run at each stage, in order, with their priorities."""
        lines = []
        for stage in STAGES:
            names = [
                f"({Priority(h.priority).name if h.priority in set(Priority) else h.priority:<12})"
                f" {type(h).__name__}"
                for h in self.hooks
                if stage in h.triggered_stages()
            ]
            if names:
                lines += [f"{stage}:", *names, " -------------------- "]
        return "\n".join(lines)

    def register_training_hooks(
        self,
        lr_config: Mapping[str, Any] | None,
        optimizer_config: Mapping[str, Any] | None = None,
        checkpoint_config: Mapping[str, Any] | None = None,
        log_config: Mapping[str, Any] | None = None,
        momentum_config: Mapping[str, Any] | None = None,
        timer_config: Mapping[str, Any] | None = None,
        custom_hooks_config: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    ) -> None:
        """Register the default hooks from the v2 config sections (MMCV's priorities)."""
        if timer_config is None:
            timer_config = dict(type="IterTimerHook")
        if lr_config is not None:
            cfg = dict(lr_config)
            if "policy" not in cfg:
                raise ConfigError("lr_config: missing key 'policy'")
            policy = cfg.pop("policy")
            cfg["type"] = lr_hook_name(policy) if isinstance(policy, str) else policy
            self.register_hook(build_module(cfg, HOOKS, path="lr_config"), "VERY_HIGH")
        if momentum_config is not None:
            cfg = dict(momentum_config)
            policy = cfg.pop("policy", None)
            if policy is not None:
                name = policy.title() if policy == policy.lower() else policy
                cfg["type"] = f"{name}MomentumUpdaterHook"
            self.register_hook(build_module(cfg, HOOKS, path="momentum_config"), "HIGH")
        if optimizer_config is not None:
            cfg = dict(optimizer_config)
            cfg.setdefault("type", "OptimizerHook")
            self.register_hook(build_module(cfg, HOOKS, path="optimizer_config"), "ABOVE_NORMAL")
        if checkpoint_config is not None:
            cfg = dict(checkpoint_config)
            cfg.setdefault("type", "CheckpointHook")
            cfg.pop("meta", None)  # tools/train.py's extra meta; kept in runner.meta
            self.register_hook(build_module(cfg, HOOKS, path="checkpoint_config"), "NORMAL")
        self.register_hook(build_module(dict(timer_config), HOOKS, path="timer_config"), "LOW")
        if log_config is not None:
            interval = log_config.get("interval", 10)
            for i, info in enumerate(log_config.get("hooks", [])):
                cfg = dict(info)
                cfg.setdefault("interval", interval)
                hook = build_module(cfg, HOOKS, path=f"log_config.hooks[{i}]")
                self.register_hook(hook, "VERY_LOW")
        if custom_hooks_config is not None:
            items = (
                [custom_hooks_config]
                if isinstance(custom_hooks_config, Mapping)
                else list(custom_hooks_config)
            )
            for item in items:
                self.register_hook_from_cfg(item)

    # --- lr -------------------------------------------------------------------------------
    def current_lr(self) -> list[float] | dict[str, list[float]]:
        """Each param group's lr (a dict of lists for several optimizers)."""
        if isinstance(self.optimizer, torch.optim.Optimizer):
            return [g["lr"] for g in self.optimizer.param_groups]
        if isinstance(self.optimizer, dict):
            return {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizer.items()}
        raise RuntimeError("current_lr() needs an optimizer")

    # --- checkpoints ----------------------------------------------------------------------
    def _checkpoint_meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def save_checkpoint(
        self,
        out_dir: str,
        filename_tmpl: str = "epoch_{}.pth",
        save_optimizer: bool = True,
        meta: Mapping[str, Any] | None = None,
        create_symlink: bool = True,
    ) -> str:
        """Save ``out_dir/filename_tmpl.format(n)`` (and ``latest.pth``); return the path."""
        if meta is not None and not isinstance(meta, Mapping):
            raise TypeError(f"save_checkpoint: meta must be a dict, got {type(meta).__name__}")
        full = dict(self.meta or {})
        full.update(meta or {})
        numbered = self._checkpoint_meta()
        full.update(numbered)
        full["rng"] = dict(torch=torch.get_rng_state(), python=list(random.getstate()[1]))
        if self.scaler is not None and hasattr(self.scaler, "state_dict"):
            full["fp16"] = dict(loss_scaler=self.scaler.state_dict())
        number = numbered["epoch"] if "epoch_" in filename_tmpl else numbered["iter"]
        filename = filename_tmpl.format(number)
        path = os.path.join(out_dir, filename)
        optimizer = self.optimizer if save_optimizer else None
        _save_checkpoint(self.model, path, optimizer=optimizer, meta=full)
        if create_symlink:
            latest = os.path.join(out_dir, "latest.pth")
            if os.path.lexists(latest):
                os.remove(latest)
            try:
                os.symlink(filename, latest)
            except OSError:
                shutil.copyfile(path, latest)
        return path

    def load_checkpoint(
        self, filename: str, map_location: Any = "cpu", strict: bool = False
    ) -> dict[str, Any]:
        """Load weights only (``load_from``)."""
        self.logger.info("load checkpoint from %s", filename)
        return _load_checkpoint(self.model, filename, map_location, strict, self.logger)

    def resume(self, checkpoint: str, resume_optimizer: bool = True) -> None:
        """Restore weights, ``epoch``, ``iter``, optimizer, RNG and hook state (``meta``)."""
        ckpt = self.load_checkpoint(checkpoint)
        meta = dict(ckpt.get("meta") or {})
        if "epoch" not in meta or "iter" not in meta:
            raise ConfigError(f"resume: {checkpoint} has no meta epoch/iter to resume from")
        self._epoch = int(meta["epoch"])
        self._iter = int(meta["iter"])
        self._restore_inner(meta)
        restored = ["weights", f"epoch={self._epoch}", f"iter={self._iter}"]
        if resume_optimizer and "optimizer" in ckpt and self.optimizer is not None:
            if isinstance(self.optimizer, torch.optim.Optimizer):
                self.optimizer.load_state_dict(ckpt["optimizer"])
            else:
                for name, opt in self.optimizer.items():
                    opt.load_state_dict(ckpt["optimizer"][name])
            restored.append("optimizer")
        rng = meta.pop("rng", None)
        if isinstance(rng, dict):
            if rng.get("torch") is not None:
                torch.set_rng_state(rng["torch"])
            if rng.get("python") is not None:
                random.setstate((3, tuple(rng["python"]), None))
            restored.append("rng")
        if meta.get("hook_msgs"):
            restored.append("hook_msgs")
        if meta.get("fp16"):
            restored.append("fp16 loss scaler")
        self.meta = {**(self.meta or {}), **meta}
        self.logger.info("resumed from %s: %s", checkpoint, ", ".join(restored))

    def _restore_inner(self, meta: Mapping[str, Any]) -> None:
        pass

    # --- loop -----------------------------------------------------------------------------
    def _step(self, data_batch: Any, train: bool) -> None:
        self.data_batch = data_batch
        step: Any = self.model.train_step
        if not train:
            step = getattr(self.model, "val_step", step)
        outputs = step(data_batch, self.optimizer)
        if not isinstance(outputs, dict):
            raise TypeError(f"train_step must return a dict, got {type(outputs).__name__}")
        if "log_vars" in outputs:
            self.log_buffer.update(outputs["log_vars"], outputs["num_samples"])
        self.outputs = outputs

    def _check_workflow(self, data_loaders: Sequence[Any], workflow: Sequence[Any]) -> None:
        if len(data_loaders) != len(workflow):
            raise ConfigError(
                f"workflow {list(workflow)} has {len(workflow)} phases but "
                f"{len(data_loaders)} data loaders were given"
            )
        for phase in workflow:
            if len(phase) != 2 or phase[0] not in ("train", "val") or int(phase[1]) < 1:
                raise ConfigError(f"workflow: bad phase {phase!r}; use ('train', n) / ('val', n)")


class EpochBasedRunner(_BaseRunner):
    """Trains for ``max_epochs`` epochs; checkpoints are ``epoch_N.pth``.

    Example:
        >>> r = EpochBasedRunner(torch.nn.Linear(1, 1), max_epochs=2)
        >>> r.epoch, r.iter, r.max_epochs
        (0, 0, 2)
    """

    def _checkpoint_meta(self) -> dict[str, Any]:
        return dict(epoch=self._epoch + 1, iter=self._iter)

    def train(self, data_loader: Any) -> None:
        """One training epoch."""
        self.model.train()
        self.mode = "train"
        self.data_loader = data_loader
        self._max_iters = (self._max_epochs or 0) * len(data_loader)
        self.call_hook("before_train_epoch")
        time.sleep(0)
        for i, data_batch in enumerate(data_loader):
            self._inner_iter = i
            self.call_hook("before_train_iter")
            self._step(data_batch, train=True)
            self.call_hook("after_train_iter")
            self.outputs = {}
            self._iter += 1
        self.call_hook("after_train_epoch")
        self._epoch += 1

    @torch.no_grad()
    def val(self, data_loader: Any) -> None:
        """One pass over ``data_loader`` computing losses without gradients."""
        self.model.eval()
        self.mode = "val"
        self.data_loader = data_loader
        self.call_hook("before_val_epoch")
        for i, data_batch in enumerate(data_loader):
            self._inner_iter = i
            self.call_hook("before_val_iter")
            self._step(data_batch, train=False)
            self.call_hook("after_val_iter")
        self.call_hook("after_val_epoch")

    def run(self, data_loaders: Sequence[Any], workflow: Sequence[tuple[str, int]]) -> None:
        """Run the workflow phases until ``max_epochs`` epochs are trained."""
        if self._max_epochs is None:
            raise ConfigError("EpochBasedRunner needs max_epochs")
        self._check_workflow(data_loaders, workflow)
        for (mode, _), loader in zip(workflow, data_loaders, strict=True):
            if mode == "train":
                self._max_iters = self._max_epochs * len(loader)
                break
        self.logger.info("Start running, work_dir: %s", self.work_dir)
        self.logger.info("Hooks will be executed in the following order:\n%s", self.get_hook_info())
        self.logger.info("workflow: %s, max: %d epochs", list(workflow), self._max_epochs)
        self.call_hook("before_run")
        while self._epoch < self._max_epochs:
            for (mode, epochs), loader in zip(workflow, data_loaders, strict=True):
                for _ in range(int(epochs)):
                    if mode == "train" and self._epoch >= self._max_epochs:
                        break
                    getattr(self, mode)(loader)
        time.sleep(0)
        self.call_hook("after_run")


class _IterLoader:
    """Endless iteration over a loader; counts passes as epochs."""

    def __init__(self, loader: Any, runner: IterBasedRunner) -> None:
        self._loader = loader
        self._runner = runner
        self._it = iter(loader)

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self) -> Any:
        try:
            return next(self._it)
        except StopIteration:
            self._runner._epoch += 1
            sampler: Any = getattr(self._loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self._runner._epoch)
            self._it = iter(self._loader)
            return next(self._it)


class IterBasedRunner(_BaseRunner):
    """Trains for ``max_iters`` iterations, cycling through the loader; ``iter_N.pth``.

    On resume, the batches of the interrupted pass that were already used are skipped, so a
    deterministic loader continues exactly where the run stopped.
    """

    def _checkpoint_meta(self) -> dict[str, Any]:
        return dict(epoch=self._epoch + 1, iter=self._iter + 1)

    def _restore_inner(self, meta: Mapping[str, Any]) -> None:
        # IterBased checkpoints store epoch + 1; the pass in progress is epoch - 1 (0-based).
        self._epoch = max(int(meta["epoch"]) - 1, 0)
        self._inner_iter = self._iter

    def save_checkpoint(
        self,
        out_dir: str,
        filename_tmpl: str = "iter_{}.pth",
        save_optimizer: bool = True,
        meta: Mapping[str, Any] | None = None,
        create_symlink: bool = True,
    ) -> str:
        """As the epoch runner, named by iteration."""
        return super().save_checkpoint(out_dir, filename_tmpl, save_optimizer, meta, create_symlink)

    def train(self, data_loader: Any) -> None:
        """One training iteration."""
        self.model.train()
        self.mode = "train"
        self.data_loader = data_loader
        data_batch = next(data_loader)
        self.call_hook("before_train_iter")
        self._step(data_batch, train=True)
        self.call_hook("after_train_iter")
        self.outputs = {}
        self._inner_iter += 1
        self._iter += 1

    @torch.no_grad()
    def val(self, data_loader: Any) -> None:
        """One validation iteration (losses, no gradients)."""
        self.model.eval()
        self.mode = "val"
        self.data_loader = data_loader
        data_batch = next(data_loader)
        self.call_hook("before_val_iter")
        self._step(data_batch, train=False)
        self.call_hook("after_val_iter")
        self._inner_iter += 1

    def run(self, data_loaders: Sequence[Any], workflow: Sequence[tuple[str, int]]) -> None:
        """Run the workflow phases (``n`` iterations each) until ``max_iters``."""
        if self._max_iters is None:
            raise ConfigError("IterBasedRunner needs max_iters")
        self._check_workflow(data_loaders, workflow)
        loaders = [_IterLoader(x, self) for x in data_loaders]
        for (mode, _), loader in zip(workflow, loaders, strict=True):
            if mode == "train" and self._iter > 0:
                skip = self._iter - self._epoch * len(loader)
                if 0 < skip < len(loader):
                    for _ in range(skip):
                        next(loader._it)
        self.logger.info("Start running, work_dir: %s", self.work_dir)
        self.logger.info("Hooks will be executed in the following order:\n%s", self.get_hook_info())
        self.logger.info("workflow: %s, max: %d iters", list(workflow), self._max_iters)
        self.call_hook("before_run")
        self.call_hook("before_train_epoch")
        while self._iter < self._max_iters:
            for (mode, iters), loader in zip(workflow, loaders, strict=True):
                self._inner_iter = 0
                if mode == "val":
                    self.call_hook("before_val_epoch")
                for _ in range(int(iters)):
                    if mode == "train" and self._iter >= self._max_iters:
                        break
                    getattr(self, mode)(loader)
                if mode == "val":
                    self.call_hook("after_val_epoch")
        time.sleep(0)
        self.call_hook("after_train_epoch")
        self.call_hook("after_run")


_RUNNERS: dict[str, type[_BaseRunner]] = {
    "EpochBasedRunner": EpochBasedRunner,
    "IterBasedRunner": IterBasedRunner,
}


def build_runner(
    cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None = None
) -> EpochBasedRunner | IterBasedRunner:
    """Build a runner from ``runner=dict(type=..., max_epochs|max_iters=...)``.

    Example:
        >>> r = build_runner(dict(type='IterBasedRunner', max_iters=5),
        ...                  dict(model=torch.nn.Linear(1, 1)))
        >>> type(r).__name__, r.max_iters
        ('IterBasedRunner', 5)
    """
    args = dict(cfg)
    name = args.pop("type", "EpochBasedRunner")
    cls = _RUNNERS.get(name) if isinstance(name, str) else name
    if cls is None:
        raise ConfigError(f"runner.type: unknown runner {name!r}; use one of {', '.join(_RUNNERS)}")
    unknown = set(args) - {"max_epochs", "max_iters"}
    if unknown:
        raise ConfigError(
            f"runner: unexpected key(s) {sorted(unknown)}; accepted: max_epochs, max_iters"
        )
    args.update(default_args or {})
    return cls(**args)  # type: ignore[return-value]
