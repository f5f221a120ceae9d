"""The :class:`Runner` protocol: what a hook may use of the runner that calls it.

Every hook method receives the runner (``hook.after_train_iter(runner)``). The protocol names
exactly the attributes and methods the hooks of :mod:`detforge.engine.hooks` use, so mypy
checks each use, and a custom hook typed against it works with any runner that provides
them. :class:`~detforge.engine.runner.EpochBasedRunner` and
:class:`~detforge.engine.runner.IterBasedRunner` satisfy it.

Hooks write only ``meta`` (``hook_msgs``) and ``scaler`` (the fp16 hook); everything else is
read-only here, though hooks may change what it holds (the log buffer, the outputs dict, the
model's parameters).

Example:
    >>> import torch
    >>> from detforge.engine.runner import EpochBasedRunner
    >>> isinstance(EpochBasedRunner(torch.nn.Linear(1, 1), max_epochs=1), Runner)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import nn
from torch.amp import GradScaler
from torch.optim import Optimizer

if TYPE_CHECKING:
    from detforge.engine.hooks.base import Hook
    from detforge.engine.hooks.logger import LogBuffer
    from detforge.engine.hooks.priority import Priority

__all__ = ["OptimizerArg", "Runner"]

OptimizerArg = Optimizer | Mapping[str, Optimizer]
"""A runner's optimizer: one, or several by name (MMCV's ``dict(generator=..., ...)``)."""


@runtime_checkable
class Runner(Protocol):
    """The runner as hooks see it (``isinstance`` checks only that the names exist)."""

    meta: dict[str, Any] | None
    """Stored in checkpoints and the first log line; hooks keep ``meta['hook_msgs']``."""
    scaler: GradScaler | None
    """The fp16 loss scaler whose state checkpoints store (set by ``Fp16OptimizerHook``)."""

    # --- what is trained ------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        """The model (wrapped in DDP in distributed runs)."""

    @property
    def optimizer(self) -> OptimizerArg | None:
        """The optimizer, a dict of them, or None (no training)."""

    # --- counters -------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Completed epochs (0-based index of the current one)."""

    @property
    def iter(self) -> int:
        """Completed training iterations."""

    @property
    def inner_iter(self) -> int:
        """Index of the iteration within the current epoch."""

    @property
    def max_epochs(self) -> int | None:
        """Training length in epochs (epoch runner)."""

    @property
    def max_iters(self) -> int | None:
        """Training length in iterations."""

    # --- the current phase ----------------------------------------------------------------
    @property
    def mode(self) -> str | None:
        """``'train'`` or ``'val'`` (None before the first phase)."""

    @property
    def data_loader(self) -> Sized | None:
        """The current phase's loader (None before the first phase)."""

    @property
    def data_batch(self) -> Any:
        """The current batch, as the loader yielded it."""

    @property
    def outputs(self) -> dict[str, Any]:
        """``train_step``'s outputs for the current batch (``loss``, ``log_vars``,
        ``num_samples``); the model decides what else."""

    # --- logging and files ----------------------------------------------------------------
    @property
    def log_buffer(self) -> LogBuffer:
        """Values logged since the last log line."""

    @property
    def logger(self) -> logging.Logger:
        """Where log lines go."""

    @property
    def work_dir(self) -> str | None:
        """Absolute folder for checkpoints and logs, or None."""

    @property
    def timestamp(self) -> str:
        """Names the run's log files (``<timestamp>.log.json``)."""

    # --- hooks ----------------------------------------------------------------------------
    @property
    def hooks(self) -> Sequence[Hook]:
        """The registered hooks in the order they run."""

    def register_hook(self, hook: Hook, priority: int | str | Priority = "NORMAL") -> None:
        """Insert ``hook`` after the hooks of equal or higher priority."""

    def register_hook_from_cfg(self, cfg: Mapping[str, Any]) -> None:
        """Build a hook from ``dict(type=..., priority=..., **args)`` and register it."""

    def call_hook(self, fn_name: str) -> None:
        """Call ``fn_name(runner)`` on every hook in priority order."""

    # --- state ----------------------------------------------------------------------------
    def current_lr(self) -> list[float] | dict[str, list[float]]:
        """Each param group's lr (a dict of lists for several optimizers)."""

    def save_checkpoint(
        self,
        out_dir: str,
        filename_tmpl: str | None = None,
        save_optimizer: bool = True,
        meta: Mapping[str, Any] | None = None,
        create_symlink: bool = True,
    ) -> str:
        """Save a checkpoint in ``out_dir`` (and point ``latest.pth`` at it); its path."""

    def resume(self, checkpoint: str, resume_optimizer: bool = True) -> None:
        """Restore weights, counters, optimizer, random and hook state from ``checkpoint``."""
