"""Runner checkpoints and exact resume: the bodies of the runners' ``save_checkpoint`` and
``resume`` (which keep MMCV's method signatures and call these functions).

Exact resume. A checkpoint holds the weights, the optimizer state (with each group's
``initial_lr``, from which the LR and momentum hooks recompute the schedule at the restored
``epoch``/``iter``), ``meta['epoch']``/``meta['iter']``, ``hook_msgs``, the fp16 loss-scaler
state and ``meta['rng']`` (Python, numpy, torch CPU and CUDA generators). Training batches
are drawn from the same random streams whether or not a run was interrupted, because

* the hooks of ``after_train_iter`` and ``after_train_epoch`` (checkpointing, evaluation,
  logging) and validation phases leave the random generators as they found them, and a
  checkpoint written by those hooks stores that state (:func:`call_rng_neutral`);
* on resume the state is applied after the ``before_run`` hooks, exactly where the
  uninterrupted run was when it wrote the checkpoint (:func:`apply_resumed_rng`);
  single-process shuffling (``GroupSampler``) draws from numpy's restored generator,
  distributed samplers are seeded with ``seed + epoch`` by ``DistSamplerSeedHook``;
* ``IterBasedRunner`` stores how many batches of the current pass over the data were used
  (``meta['data_position']``) and skips them at the sampler level on resume, without loading
  them (its infinite samplers are seeded generators; see :func:`resume_skip`).

Distributed epoch runs store every rank's generators (``meta['rng_ranks']``) and each rank
gets its own back; otherwise every rank restores rank 0's state. Not restorable: random state
inside persistent loader workers (``persistent_workers=True``, or any worker of an
``IterBasedRunner`` pass that was cut); workers created per epoch are seeded again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from detforge.engine.checkpoint_save import (
    capture_rng_state,
    point_latest,
    restore_rng_state,
    save_checkpoint,
)
from detforge.engine.hooks.base import optimizers_of
from detforge.errors import ConfigError
from detforge.utils.checkpoint import load_state_dict, read_checkpoint
from detforge.utils.dist import get_dist_info

if TYPE_CHECKING:  # the runners call these functions with themselves
    from detforge.engine.runner import IterBasedRunner, _BaseRunner

__all__ = [
    "apply_resumed_rng",
    "call_rng_neutral",
    "resume",
    "resume_skip",
    "save_runner_checkpoint",
]


def save_runner_checkpoint(
    runner: _BaseRunner,
    out_dir: str,
    filename_tmpl: str,
    save_optimizer: bool = True,
    meta: Mapping[str, Any] | None = None,
    create_symlink: bool = True,
) -> str:
    """Save ``out_dir/filename_tmpl.format(n)`` (and ``latest.pth``) on rank 0; the path.

    ``n`` is the epoch for ``epoch_*`` templates, otherwise the iteration. The meta holds the
    runner's meta, ``meta``, the counters, the random state (every rank's at the end of a
    distributed epoch), the world size and the fp16 loss scaler.
    """
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"save_checkpoint: meta must be a dict, got {type(meta).__name__}")
    full = dict(runner.meta or {})
    full.update(meta or {})
    numbered = runner._checkpoint_meta()
    full.update(numbered)
    number = numbered["epoch"] if "epoch_" in filename_tmpl else numbered["iter"]
    filename = filename_tmpl.format(number)
    path = os.path.join(out_dir, filename)
    rank, world_size = get_dist_info()
    if rank != 0:  # one writer; the other ranks hold the same weights
        return path
    full["rng"] = runner._rng_snapshot or capture_rng_state()
    if runner._rng_ranks is not None and runner._rng_snapshot is not None:
        full["rng_ranks"] = runner._rng_ranks
    full["world_size"] = world_size
    if runner.scaler is not None and hasattr(runner.scaler, "state_dict"):
        full["fp16"] = dict(loss_scaler=runner.scaler.state_dict())
    optimizer = runner.optimizer if save_optimizer else None
    save_checkpoint(runner.model, path, optimizer=optimizer, meta=full)
    if create_symlink:
        point_latest(out_dir, filename, path)
    return path


def resume(runner: _BaseRunner, checkpoint: str, resume_optimizer: bool = True) -> None:
    """Restore weights, ``epoch``, ``iter``, optimizer, RNG and hook state (``meta``).

    The RNG state is kept for :func:`apply_resumed_rng`. As in MMCV, ``iter`` is rescaled by
    ``old_world_size / world_size`` when the number of processes changed (the data position
    is then dropped). The weights must fit the model (see
    :func:`~detforge.utils.checkpoint.load_state_dict`'s ``strict``), which is looked through
    DDP/DataParallel wrappers. The log line names everything that was restored.

    Raises:
        CheckpointError: the checkpoint cannot be read or leaves a weight of the model unset.
        ConfigError: it has no ``meta`` epoch/iter.
    """
    ckpt, state = read_checkpoint(checkpoint)
    report = load_state_dict(
        runner.model, state, strict=True, source=str(checkpoint), logger=runner.logger
    )
    meta = dict(ckpt.get("meta") or {})
    if "epoch" not in meta or "iter" not in meta:
        raise ConfigError(f"resume: {checkpoint} has no meta epoch/iter to resume from")
    runner._epoch = int(meta["epoch"])
    runner._iter = int(meta["iter"])
    rank, world_size = get_dist_info()
    old_world = int(meta.get("world_size", world_size))
    if old_world != world_size:
        new_iter = runner._iter * old_world // world_size
        runner.logger.warning(
            "resume: %s was saved by %d processes, this run has %d: iter %d -> %d",
            checkpoint,
            old_world,
            world_size,
            runner._iter,
            new_iter,
        )
        runner._iter = new_iter
        meta.pop("data_position", None)
    runner._restore_inner(meta)
    weights = f"weights ({report.loaded} of {report.total} tensors)"
    restored = [weights, f"epoch={runner._epoch}", f"iter={runner._iter}"]
    if meta.get("data_position"):
        restored.append(f"data position={meta['data_position']} batches")
    if resume_optimizer and "optimizer" in ckpt and runner.optimizer is not None:
        states = ckpt["optimizer"]
        for name, opt in optimizers_of(runner.optimizer).items():
            opt.load_state_dict(states[name] if name else states)
        restored.append("optimizer")
    rng = meta.pop("rng", None)
    ranks = meta.pop("rng_ranks", None)
    if isinstance(ranks, list | tuple) and len(ranks) == world_size:
        rng = ranks[rank]
    if isinstance(rng, dict):
        runner._resumed_rng = rng
        names = [k for k in ("torch", "cuda", "numpy", "python") if rng.get(k) is not None]
        restored.append(f"rng ({', '.join(names)})")
    if meta.get("hook_msgs"):
        restored.append("hook_msgs")
    if meta.get("fp16"):
        restored.append("fp16 loss scaler")
    runner.meta = {**(runner.meta or {}), **meta}
    runner.logger.info("resumed from %s: %s", checkpoint, ", ".join(restored))


def apply_resumed_rng(runner: _BaseRunner) -> None:
    """Put back the random state :func:`resume` read (once; called after ``before_run``)."""
    if runner._resumed_rng is not None:
        restore_rng_state(runner._resumed_rng)
        runner._resumed_rng = None


def call_rng_neutral(runner: _BaseRunner, stage: str, gather: bool = False) -> None:
    """Call ``stage``'s hooks and put the random generators back as they were before.

    A checkpoint written by these hooks stores that state (with ``gather``, every rank's).
    """
    runner._rng_snapshot = capture_rng_state()
    _, world_size = get_dist_info()
    if gather and world_size > 1:
        import torch.distributed as dist

        runner._rng_ranks = [None] * world_size
        dist.all_gather_object(runner._rng_ranks, runner._rng_snapshot)
    try:
        runner.call_hook(stage)
    finally:
        restore_rng_state(runner._rng_snapshot)
        runner._rng_snapshot = None
        runner._rng_ranks = None


def resume_skip(runner: IterBasedRunner, loader: Any) -> int:
    """The batches of ``loader`` an ``IterBasedRunner`` skips when it starts: the resumed
    ``data_position``, or (a checkpoint without one) the iterations into the current pass."""
    if runner._data_position is not None:
        return int(runner._data_position)
    if runner._iter == 0:
        return 0
    skip = runner._iter - runner._epoch * len(loader)
    return int(skip) if 0 < skip < len(loader) else 0
