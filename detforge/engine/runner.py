"""MMCV 1.x style runners: ``EpochBasedRunner``, ``IterBasedRunner`` and ``build_runner``.

A runner loops over the workflow phases, calls ``model.train_step`` per batch and the hooks
at each stage (``before_run``, ``before_train_epoch``, ``before_train_iter``,
``after_backward``, ``after_train_iter``, ... ``after_run``), sorted by priority.

Checkpoints store what an exact resume needs (see :mod:`detforge.engine.resume`): a resumed
run draws the same batches and random numbers as one that was never interrupted.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence, Sized
from typing import Any

import torch
from torch import nn

from detforge.engine import resume as _resume
from detforge.engine.checkpoint_save import capture_rng_state, restore_rng_state
from detforge.engine.hooks import (
    STAGES,
    Hook,
    LogBuffer,
    get_priority,
    optimizers_of,
)
from detforge.engine.hooks.priority import Priority
from detforge.engine.hooks.training import register_training_hooks
from detforge.engine.iter_loader import IterLoader
from detforge.engine.protocols import OptimizerArg
from detforge.errors import ConfigError, ConfigTypeError
from detforge.registry import HOOKS, build_module
from detforge.utils.checkpoint import load_checkpoint as _load_checkpoint

__all__ = ["EpochBasedRunner", "IterBasedRunner", "build_runner"]

_LOG = logging.getLogger("detforge")


class _BaseRunner:
    filename_tmpl = "epoch_{}.pth"  # save_checkpoint's default name

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerArg | None = None,
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
        self.data_loader: Sized | None = None
        self.data_batch: Any = None
        self.scaler: torch.amp.GradScaler | None = None
        self._epoch = 0
        self._iter = 0
        self._inner_iter = 0
        self._max_epochs = max_epochs
        self._max_iters = max_iters
        # RNG state while the after_* hooks run (what a checkpoint saved there stores)
        self._rng_snapshot: dict[str, Any] | None = None
        self._rng_ranks: list[Any] | None = None  # every rank's, at the end of an epoch
        self._resumed_rng: dict[str, Any] | None = None  # applied once run() starts

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
                f" {getattr(h, 'display_name', type(h).__name__)}"
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
        """Register the default hooks from the v2 config sections (MMCV's priorities); see
        :func:`detforge.engine.hooks.training.register_training_hooks`."""
        register_training_hooks(
            self,
            lr_config,
            optimizer_config,
            checkpoint_config,
            log_config,
            momentum_config,
            timer_config,
            custom_hooks_config,
        )

    # --- lr -------------------------------------------------------------------------------
    def current_lr(self) -> list[float] | dict[str, list[float]]:
        """Each param group's lr (a dict of lists for several optimizers)."""
        if self.optimizer is None:
            raise RuntimeError("current_lr() needs an optimizer")
        lrs = {
            k: [g["lr"] for g in o.param_groups] for k, o in optimizers_of(self.optimizer).items()
        }
        return lrs[""] if isinstance(self.optimizer, torch.optim.Optimizer) else lrs

    # --- checkpoints ----------------------------------------------------------------------
    def _checkpoint_meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def save_checkpoint(
        self,
        out_dir: str,
        filename_tmpl: str | None = None,
        save_optimizer: bool = True,
        meta: Mapping[str, Any] | None = None,
        create_symlink: bool = True,
    ) -> str:
        """Save ``out_dir/filename_tmpl.format(n)`` (and ``latest.pth``); return the path.

        ``filename_tmpl`` defaults to the runner's :attr:`filename_tmpl` (``epoch_{}.pth``,
        ``iter_{}.pth``); see :func:`detforge.engine.resume.save_runner_checkpoint`.
        """
        tmpl = self.filename_tmpl if filename_tmpl is None else filename_tmpl
        return _resume.save_runner_checkpoint(
            self, out_dir, tmpl, save_optimizer, meta, create_symlink
        )

    def load_checkpoint(
        self, filename: str, map_location: Any = "cpu", strict: bool = False
    ) -> dict[str, Any]:
        """Load weights only (``load_from``) into the model inside a DDP/DataParallel wrapper.

        Without ``strict``, tensors of another shape (a head for another class count) are
        skipped with a warning; a checkpoint of which no tensor fits is a ``CheckpointError``.
        The log line says how many tensors were loaded.
        """
        return _load_checkpoint(self.model, filename, map_location, strict, self.logger)

    def resume(self, checkpoint: str, resume_optimizer: bool = True) -> None:
        """Restore weights, ``epoch``, ``iter``, optimizer, RNG and hook state (``meta``);
        see :func:`detforge.engine.resume.resume`."""
        _resume.resume(self, checkpoint, resume_optimizer)

    def _restore_inner(self, meta: Mapping[str, Any]) -> None:
        """Runner-specific position state from a checkpoint's ``meta`` (called by resume)."""

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

    def _set_limit_in_run(self, name: str, value: int | None) -> None:
        """v2's deprecated ``run(..., max_epochs)``/``run(..., max_iters)``: warn, then use it."""
        if value is None:
            return
        warnings.warn(
            f"setting {name} in run is deprecated, please set {name} in runner_config",
            DeprecationWarning,
            stacklevel=3,
        )
        setattr(self, f"_{name}", value)

    def _check_workflow(self, data_loaders: Sequence[Any], workflow: Sequence[Any]) -> None:
        if not isinstance(data_loaders, list | tuple):
            raise ConfigTypeError(
                f"{type(self).__name__}.run: data_loaders must be a list with one loader per "
                f"workflow phase, got {type(data_loaders).__name__}"
            )
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
        for i, data_batch in enumerate(data_loader):
            self._inner_iter = i
            self.call_hook("before_train_iter")
            self._step(data_batch, train=True)
            _resume.call_rng_neutral(self, "after_train_iter")
            self.outputs = {}
            self._iter += 1
        _resume.call_rng_neutral(self, "after_train_epoch", gather=True)
        self._epoch += 1

    @torch.no_grad()
    def val(self, data_loader: Any) -> None:
        """One pass over ``data_loader`` computing losses without gradients (the random
        generators are left as they were)."""
        snapshot = capture_rng_state()
        try:
            self._val(data_loader)
        finally:
            restore_rng_state(snapshot)

    def _val(self, data_loader: Any) -> None:
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

    def run(
        self,
        data_loaders: Sequence[Any],
        workflow: Sequence[tuple[str, int]],
        max_epochs: int | None = None,
    ) -> None:
        """Run the workflow phases until ``max_epochs`` epochs are trained.

        ``max_epochs`` here is v2's deprecated spelling of the constructor's (a
        ``DeprecationWarning``, then it wins).
        """
        self._set_limit_in_run("max_epochs", max_epochs)
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
        _resume.apply_resumed_rng(self)
        while self._epoch < self._max_epochs:
            for (mode, epochs), loader in zip(workflow, data_loaders, strict=True):
                for _ in range(int(epochs)):
                    if mode == "train" and self._epoch >= self._max_epochs:
                        break
                    getattr(self, mode)(loader)
        self.call_hook("after_run")


class IterBasedRunner(_BaseRunner):
    """Trains for ``max_iters`` iterations, cycling through the loader; ``iter_N.pth``.

    Checkpoints store ``meta['data_position']``, the batches of the current pass over the
    training data already used; on resume they are skipped (at the sampler level for a
    ``DataLoader``), so a loader with a seeded sampler continues exactly where the run
    stopped. ``epoch`` counts completed passes (the infinite samplers of
    ``build_dataloader`` never complete one).

    Example:
        >>> r = IterBasedRunner(torch.nn.Linear(1, 1), max_iters=100)
        >>> r.iter, r.max_iters
        (0, 100)
    """

    filename_tmpl = "iter_{}.pth"
    _train_loader: IterLoader | None = None
    _data_position: int | None = None

    def _checkpoint_meta(self) -> dict[str, Any]:
        meta = dict(epoch=self._epoch + 1, iter=self._iter + 1)
        if self._train_loader is not None:
            meta["data_position"] = self._train_loader.position
        return meta

    def _restore_inner(self, meta: Mapping[str, Any]) -> None:
        # IterBased checkpoints store epoch + 1; the pass in progress is epoch - 1 (0-based).
        self._epoch = max(int(meta["epoch"]) - 1, 0)
        self._inner_iter = self._iter
        position = meta.get("data_position")
        self._data_position = int(position) if position is not None else None

    def train(self, data_loader: Any) -> None:
        """One training iteration."""
        self.model.train()
        self.mode = "train"
        self.data_loader = data_loader
        data_batch = next(data_loader)
        self.call_hook("before_train_iter")
        self._step(data_batch, train=True)
        _resume.call_rng_neutral(self, "after_train_iter")
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

    def run(
        self,
        data_loaders: Sequence[Any],
        workflow: Sequence[tuple[str, int]],
        max_iters: int | None = None,
    ) -> None:
        """Run the workflow phases (``n`` iterations each) until ``max_iters``.

        ``max_iters`` here is v2's deprecated spelling of the constructor's (a
        ``DeprecationWarning``, then it wins).
        """
        self._set_limit_in_run("max_iters", max_iters)
        if self._max_iters is None:
            raise ConfigError("IterBasedRunner needs max_iters")
        self._check_workflow(data_loaders, workflow)
        loaders = []
        for (mode, _), loader in zip(workflow, data_loaders, strict=True):
            skip = _resume.resume_skip(self, loader) if mode == "train" else 0
            loaders.append(IterLoader(loader, self, skip))
            if mode == "train" and self._train_loader is None:
                self._train_loader = loaders[-1]
        self._data_position = None
        if self._train_loader is not None:  # what before_run/before_train_epoch hooks see
            self.mode, self.data_loader = "train", self._train_loader
        self.logger.info("Start running, work_dir: %s", self.work_dir)
        self.logger.info("Hooks will be executed in the following order:\n%s", self.get_hook_info())
        self.logger.info("workflow: %s, max: %d iters", list(workflow), self._max_iters)
        self.call_hook("before_run")
        self.call_hook("before_train_epoch")
        _resume.apply_resumed_rng(self)
        while self._iter < self._max_iters:
            for (mode, iters), loader in zip(workflow, loaders, strict=True):
                self._inner_iter = 0
                snapshot = capture_rng_state() if mode == "val" else None
                if mode == "val":
                    self.call_hook("before_val_epoch")
                for _ in range(int(iters)):
                    if mode == "train" and self._iter >= self._max_iters:
                        break
                    getattr(self, mode)(loader)
                if mode == "val":
                    self.call_hook("after_val_epoch")
                if snapshot is not None:
                    restore_rng_state(snapshot)
        self.call_hook("after_train_epoch")
        self.call_hook("after_run")
        self._train_loader = None


_RUNNERS: dict[str, type[EpochBasedRunner] | type[IterBasedRunner]] = {
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
    return cls(**args)
