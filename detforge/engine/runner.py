"""MMCV 1.x style runners: ``EpochBasedRunner``, ``IterBasedRunner`` and ``build_runner``.

A runner loops over the workflow phases, calls ``model.train_step`` per batch and the hooks
at each stage (``before_run``, ``before_train_epoch``, ``before_train_iter``,
``after_backward``, ``after_train_iter``, ... ``after_run``), sorted by priority.

Exact resume. A checkpoint holds the weights, the optimizer state (with each group's
``initial_lr``, from which the LR and momentum hooks recompute the schedule at the restored
``epoch``/``iter``), ``meta['epoch']``/``meta['iter']``, ``hook_msgs``, the fp16 loss-scaler
state and ``meta['rng']`` (Python, numpy, torch CPU and CUDA generators). Training batches
are drawn from the same random streams whether or not a run was interrupted, because

* the hooks of ``after_train_iter`` and ``after_train_epoch`` (checkpointing, evaluation,
  logging) and validation phases leave the random generators as they found them, and a
  checkpoint written by those hooks stores that state;
* on resume the state is applied after the ``before_run`` hooks, exactly where the
  uninterrupted run was when it wrote the checkpoint; single-process shuffling
  (``GroupSampler``) draws from numpy's restored generator, distributed samplers are seeded
  with ``seed + epoch`` by ``DistSamplerSeedHook``;
* ``IterBasedRunner`` stores how many batches of the current pass over the data were used
  (``meta['data_position']``) and skips them at the sampler level on resume, without loading
  them (its infinite samplers are seeded generators).

Distributed epoch runs store every rank's generators (``meta['rng_ranks']``) and each rank
gets its own back; otherwise every rank restores rank 0's state. Not restorable: random state
inside persistent loader workers (``persistent_workers=True``, or any worker of an
``IterBasedRunner`` pass that was cut); workers created per epoch are seeded again.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, Sampler

from detforge.engine.checkpoint import load_checkpoint as _load_checkpoint
from detforge.engine.checkpoint_save import capture_rng_state, restore_rng_state
from detforge.engine.checkpoint_save import save_checkpoint as _save_checkpoint
from detforge.engine.dist import get_dist_info
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
        number = numbered["epoch"] if "epoch_" in filename_tmpl else numbered["iter"]
        filename = filename_tmpl.format(number)
        path = os.path.join(out_dir, filename)
        rank, world_size = get_dist_info()
        if rank != 0:  # one writer; the other ranks hold the same weights
            return path
        full["rng"] = self._rng_snapshot or capture_rng_state()
        if self._rng_ranks is not None and self._rng_snapshot is not None:
            full["rng_ranks"] = self._rng_ranks
        full["world_size"] = world_size
        if self.scaler is not None and hasattr(self.scaler, "state_dict"):
            full["fp16"] = dict(loss_scaler=self.scaler.state_dict())
        optimizer = self.optimizer if save_optimizer else None
        _save_checkpoint(self.model, path, optimizer=optimizer, meta=full)
        if create_symlink:
            _point_latest(out_dir, filename, path)
        return path

    def load_checkpoint(
        self, filename: str, map_location: Any = "cpu", strict: bool = False
    ) -> dict[str, Any]:
        """Load weights only (``load_from``)."""
        self.logger.info("load checkpoint from %s", filename)
        return _load_checkpoint(self.model, filename, map_location, strict, self.logger)

    def resume(self, checkpoint: str, resume_optimizer: bool = True) -> None:
        """Restore weights, ``epoch``, ``iter``, optimizer, RNG and hook state (``meta``).

        The RNG state is applied when :meth:`run` starts (after the ``before_run`` hooks).
        As in MMCV, ``iter`` is rescaled by ``old_world_size / world_size`` when the number
        of processes changed. The log line names everything that was restored.
        """
        ckpt = self.load_checkpoint(checkpoint)
        meta = dict(ckpt.get("meta") or {})
        if "epoch" not in meta or "iter" not in meta:
            raise ConfigError(f"resume: {checkpoint} has no meta epoch/iter to resume from")
        self._epoch = int(meta["epoch"])
        self._iter = int(meta["iter"])
        rank, world_size = get_dist_info()
        old_world = int(meta.get("world_size", world_size))
        if old_world != world_size:
            new_iter = self._iter * old_world // world_size
            self.logger.warning(
                "resume: %s was saved by %d processes, this run has %d: iter %d -> %d",
                checkpoint, old_world, world_size, self._iter, new_iter,
            )  # fmt: skip
            self._iter = new_iter
            meta.pop("data_position", None)
        self._restore_inner(meta)
        restored = ["weights", f"epoch={self._epoch}", f"iter={self._iter}"]
        if meta.get("data_position"):
            restored.append(f"data position={meta['data_position']} batches")
        if resume_optimizer and "optimizer" in ckpt and self.optimizer is not None:
            if isinstance(self.optimizer, torch.optim.Optimizer):
                self.optimizer.load_state_dict(ckpt["optimizer"])
            else:
                for name, opt in self.optimizer.items():
                    opt.load_state_dict(ckpt["optimizer"][name])
            restored.append("optimizer")
        rng = meta.pop("rng", None)
        ranks = meta.pop("rng_ranks", None)
        if isinstance(ranks, list | tuple) and len(ranks) == world_size:
            rng = ranks[rank]
        if isinstance(rng, dict):
            self._resumed_rng = rng
            names = [k for k in ("torch", "cuda", "numpy", "python") if rng.get(k) is not None]
            restored.append(f"rng ({', '.join(names)})")
        if meta.get("hook_msgs"):
            restored.append("hook_msgs")
        if meta.get("fp16"):
            restored.append("fp16 loss scaler")
        self.meta = {**(self.meta or {}), **meta}
        self.logger.info("resumed from %s: %s", checkpoint, ", ".join(restored))

    def _restore_inner(self, meta: Mapping[str, Any]) -> None:
        pass

    def _apply_resumed_rng(self) -> None:
        if self._resumed_rng is not None:
            restore_rng_state(self._resumed_rng)
            self._resumed_rng = None

    def _call_rng_neutral(self, stage: str, gather: bool = False) -> None:
        """Call ``stage``'s hooks and put the random generators back as they were before.

        A checkpoint written by these hooks stores that state (with ``gather``, every rank's).
        """
        self._rng_snapshot = capture_rng_state()
        _, world_size = get_dist_info()
        if gather and world_size > 1:
            import torch.distributed as dist

            self._rng_ranks = [None] * world_size
            dist.all_gather_object(self._rng_ranks, self._rng_snapshot)
        try:
            self.call_hook(stage)
        finally:
            restore_rng_state(self._rng_snapshot)
            self._rng_snapshot = None
            self._rng_ranks = None

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
            self._call_rng_neutral("after_train_iter")
            self.outputs = {}
            self._iter += 1
        self._call_rng_neutral("after_train_epoch", gather=True)
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
        self._apply_resumed_rng()
        while self._epoch < self._max_epochs:
            for (mode, epochs), loader in zip(workflow, data_loaders, strict=True):
                for _ in range(int(epochs)):
                    if mode == "train" and self._epoch >= self._max_epochs:
                        break
                    getattr(self, mode)(loader)
        time.sleep(0)
        self.call_hook("after_run")


class _SkipBatches(Sampler[Any]):
    """A batch sampler without the first ``skip`` batches of ``batch_sampler``."""

    def __init__(self, batch_sampler: Any, skip: int) -> None:
        self.batch_sampler = batch_sampler
        self.skip = skip

    def __iter__(self) -> Any:
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)


def _skipping_iterator(loader: Any, skip: int) -> Any:
    """An iterator over ``loader`` that starts after ``skip`` batches.

    For a map-style ``DataLoader`` the batches are skipped in its batch sampler, so their
    images are neither loaded nor transformed (which would also draw random numbers).
    """
    if (
        isinstance(loader, DataLoader)
        and loader.batch_sampler is not None
        and not isinstance(loader.dataset, IterableDataset)
    ):
        workers = loader.num_workers
        skipping: DataLoader[Any] = DataLoader(
            loader.dataset,
            batch_sampler=_SkipBatches(loader.batch_sampler, skip),
            num_workers=workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            timeout=loader.timeout,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context if workers else None,
            generator=loader.generator,
            prefetch_factor=loader.prefetch_factor if workers else None,
            persistent_workers=loader.persistent_workers if workers else False,
        )
        return iter(skipping)
    it = iter(loader)
    for _ in range(skip):
        next(it)
    return it


class _IterLoader:
    """Endless iteration over a loader; counts passes as epochs and the batches of the
    current pass (``position``)."""

    def __init__(self, loader: Any, runner: IterBasedRunner, skip: int = 0) -> None:
        self._loader = loader
        self._runner = runner
        self._it = _skipping_iterator(loader, skip) if skip else iter(loader)
        self.position = skip

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:  # dataset, sampler, ... of the wrapped loader
        if name == "_loader":
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __next__(self) -> Any:
        try:
            batch = next(self._it)
        except StopIteration:
            self._runner._epoch += 1
            sampler: Any = getattr(self._loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self._runner._epoch)
            self._it = iter(self._loader)
            self.position = 0
            batch = next(self._it)
        self.position += 1
        return batch


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

    _train_loader: _IterLoader | None = None

    def _checkpoint_meta(self) -> dict[str, Any]:
        meta = dict(epoch=self._epoch + 1, iter=self._iter + 1)
        if self._train_loader is not None:
            meta["data_position"] = self._train_loader.position
        return meta

    def _restore_inner(self, meta: Mapping[str, Any]) -> None:
        # IterBased checkpoints store epoch + 1; the pass in progress is epoch - 1 (0-based).
        self._epoch = max(int(meta["epoch"]) - 1, 0)
        self._inner_iter = self._iter
        self._data_position = meta.get("data_position")

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
        self._call_rng_neutral("after_train_iter")
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

    def _resume_skip(self, loader: Any) -> int:
        position = getattr(self, "_data_position", None)
        if position is not None:
            return int(position)
        if self._iter == 0:
            return 0
        skip = self._iter - self._epoch * len(loader)  # a checkpoint without data_position
        return skip if 0 < skip < len(loader) else 0

    def run(self, data_loaders: Sequence[Any], workflow: Sequence[tuple[str, int]]) -> None:
        """Run the workflow phases (``n`` iterations each) until ``max_iters``."""
        if self._max_iters is None:
            raise ConfigError("IterBasedRunner needs max_iters")
        self._check_workflow(data_loaders, workflow)
        loaders = []
        for (mode, _), loader in zip(workflow, data_loaders, strict=True):
            skip = self._resume_skip(loader) if mode == "train" else 0
            loaders.append(_IterLoader(loader, self, skip))
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
        self._apply_resumed_rng()
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
        time.sleep(0)
        self.call_hook("after_train_epoch")
        self.call_hook("after_run")
        self._train_loader = None


def _point_latest(out_dir: str, filename: str, path: str) -> None:
    """Make ``out_dir/latest.pth`` a link to ``filename`` (a copy where links fail), replacing
    the old one in one rename so that it never goes missing."""
    latest = os.path.join(out_dir, "latest.pth")
    tmp = os.path.join(out_dir, f".latest.pth.{os.getpid()}.tmp")
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.symlink(filename, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, latest)


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
