"""``CheckpointHook``: save ``epoch_N.pth``/``iter_N.pth`` (+ ``latest.pth``) periodically."""

from __future__ import annotations

import os

from detforge.engine.checkpoint_save import check_latest_link
from detforge.engine.hooks.base import Hook
from detforge.engine.protocols import Runner
from detforge.registry import HOOKS

__all__ = ["CheckpointHook"]


@HOOKS.register_module()
class CheckpointHook(Hook):
    """Save a checkpoint every ``interval`` epochs (or iterations), and after the last one.

    Args:
        interval: Period; ``-1`` saves only the last one (when ``save_last``).
        by_epoch: Count epochs (``epoch_N.pth``) instead of iterations (``iter_N.pth``).
        save_optimizer: Include the optimizer state.
        out_dir: Save to ``out_dir/<work_dir name>`` instead of the work dir.
        max_keep_ckpts: Keep only the newest this many numbered checkpoints (``-1``: all).
        save_last: Also save at the end of training when it is off the interval.
        sync_buffer: Accepted for v2 configs (buffers are not synchronised here).

    Raises:
        CheckpointError: before training, when ``latest.pth`` in the output folder is a
            directory (it could never be pointed at the newest checkpoint).
    """

    def __init__(
        self,
        interval: int = -1,
        by_epoch: bool = True,
        save_optimizer: bool = True,
        out_dir: str | None = None,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        sync_buffer: bool = False,
    ) -> None:
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_optimizer = save_optimizer
        self.out_dir = out_dir
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.sync_buffer = sync_buffer

    def before_run(self, runner: Runner) -> None:
        if self.out_dir is None:
            self.out_dir = runner.work_dir
        elif runner.work_dir is not None:
            self.out_dir = os.path.join(
                self.out_dir, os.path.basename(os.path.abspath(runner.work_dir))
            )
        if self.out_dir is not None:
            check_latest_link(self.out_dir)
        runner.logger.info("Checkpoints will be saved to %s", self.out_dir)

    def after_train_epoch(self, runner: Runner) -> None:
        if not self.by_epoch:
            return
        if self.every_n_epochs(runner, self.interval) or (
            self.save_last and self.is_last_epoch(runner)
        ):
            runner.logger.info("Saving checkpoint at %d epochs", runner.epoch + 1)
            self._save(runner, runner.epoch + 1)

    def after_train_iter(self, runner: Runner) -> None:
        if self.by_epoch:
            return
        if self.every_n_iters(runner, self.interval) or (
            self.save_last and self.is_last_iter(runner)
        ):
            runner.logger.info("Saving checkpoint at %d iterations", runner.iter + 1)
            self._save(runner, runner.iter + 1)

    def _save(self, runner: Runner, number: int) -> None:
        assert self.out_dir is not None
        tmpl = "epoch_{}.pth" if self.by_epoch else "iter_{}.pth"
        runner.save_checkpoint(self.out_dir, filename_tmpl=tmpl, save_optimizer=self.save_optimizer)
        if runner.meta is not None:
            runner.meta.setdefault("hook_msgs", {})["last_ckpt"] = os.path.join(
                self.out_dir, tmpl.format(number)
            )
        if self.max_keep_ckpts > 0:
            step = self.interval if self.interval > 0 else 1
            stale = number - self.max_keep_ckpts * step
            while stale > 0:
                path = os.path.join(self.out_dir, tmpl.format(stale))
                if not os.path.exists(path):
                    break
                os.remove(path)
                stale -= step
