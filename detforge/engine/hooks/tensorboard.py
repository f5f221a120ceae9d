"""``TensorboardLoggerHook``: the logged scalars as TensorBoard events (MMCV 1.x's hook).

Needs the ``tensorboard`` package (``pip install tensorboard``, or the ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import numbers
import os
from typing import TYPE_CHECKING, Any

from detforge.engine.hooks.logger import LoggerHook
from detforge.engine.hooks.momentum_updater import current_momentum
from detforge.engine.protocols import Runner
from detforge.registry import HOOKS

if TYPE_CHECKING:  # imported on use: it needs the optional tensorboard package
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["TensorboardLoggerHook"]


@HOOKS.register_module()
class TensorboardLoggerHook(LoggerHook):
    """Write every logged value to ``log_dir`` (default ``<work_dir>/tf_logs``) on rank 0.

    Tags are ``<mode>/<key>`` (``train/loss_cls``, ``train/time``, ``val/bbox_mAP``; keys that
    already hold a ``/`` such as ``val/loss`` are kept as they are), ``learning_rate`` and
    ``momentum`` (``learning_rate/<name>`` for a dict of optimizers); text values such as
    ``bbox_mAP_copypaste`` go to the text tab. The step is the 1-based global iteration.
    Unlike MMCV, ``time`` and ``data_time`` are written too.

    Args:
        log_dir: Event file folder.
        interval: Logging period in iterations (``log_config.interval`` when built from it).
        ignore_last: Skip the last, shorter interval of an epoch.
        reset_flag: Clear the log buffer output after logging.
        by_epoch: Count intervals within epochs.

    Example:
        >>> log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook'),
        ...                                       dict(type='TensorboardLoggerHook')])
    """

    def __init__(
        self,
        log_dir: str | None = None,
        interval: int = 10,
        ignore_last: bool = True,
        reset_flag: bool = False,
        by_epoch: bool = True,
    ) -> None:
        super().__init__(interval, ignore_last, reset_flag, by_epoch)
        self.log_dir = log_dir
        self.writer: SummaryWriter | None = None

    def before_run(self, runner: Runner) -> None:
        from detforge.utils.dist import get_dist_info

        if get_dist_info()[0] != 0:
            return
        if importlib.util.find_spec("tensorboard") is None:
            raise ImportError(
                "TensorboardLoggerHook (log_config.hooks) needs the tensorboard package: "
                "pip install tensorboard"
            )
        from torch.utils.tensorboard import SummaryWriter

        if self.log_dir is None:
            if runner.work_dir is None:
                raise ValueError("TensorboardLoggerHook: give log_dir or run with a work_dir")
            self.log_dir = os.path.join(runner.work_dir, "tf_logs")
        self.writer = SummaryWriter(self.log_dir)

    def loggable_tags(self, runner: Runner) -> dict[str, Any]:
        """The ``{tag: value}`` pairs a log call writes (numbers and strings only)."""
        mode = self.get_mode(runner)
        tags: dict[str, Any] = {}
        for key, value in runner.log_buffer.output.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Number | str):
                continue
            tags[key if "/" in key else f"{mode}/{key}"] = value
        for name, values in (
            ("learning_rate", runner.current_lr()),
            ("momentum", current_momentum(runner.optimizer)),
        ):
            if isinstance(values, dict):
                tags.update({f"{name}/{k}": v[0] for k, v in values.items() if v})
            elif values:
                tags[name] = values[0]
        return tags

    def log(self, runner: Runner) -> None:
        if self.writer is None:
            return
        step = self.get_iter(runner)
        for tag, value in self.loggable_tags(runner).items():
            if isinstance(value, str):
                self.writer.add_text(tag, value, step)
            else:
                self.writer.add_scalar(tag, float(value), step)

    def after_run(self, runner: Runner) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
