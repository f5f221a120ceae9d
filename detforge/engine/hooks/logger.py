"""Logging: ``LogBuffer``, ``IterTimerHook`` and ``TextLoggerHook`` (text + ``.log.json``)."""

from __future__ import annotations

import datetime
import json
import os
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from detforge.engine.hooks.base import Hook
from detforge.engine.protocols import Runner
from detforge.registry import HOOKS

__all__ = ["IterTimerHook", "LogBuffer", "LoggerHook", "TextLoggerHook"]


class LogBuffer:
    """Per-key history of logged values and their sample counts; ``average`` fills ``output``.

    Example:
        >>> buf = LogBuffer()
        >>> buf.update({'loss': 1.0}, 1); buf.update({'loss': 3.0}, 3)
        >>> buf.average(2); buf.output['loss'], buf.ready
        (2.5, True)
    """

    def __init__(self) -> None:
        self.val_history: OrderedDict[str, list[float]] = OrderedDict()
        self.n_history: OrderedDict[str, list[int]] = OrderedDict()
        self.output: OrderedDict[str, Any] = OrderedDict()
        self.ready = False

    def clear(self) -> None:
        """Forget history and output."""
        self.val_history.clear()
        self.n_history.clear()
        self.clear_output()

    def clear_output(self) -> None:
        """Forget the averaged output."""
        self.output.clear()
        self.ready = False

    def update(self, vars: dict[str, Any], count: int = 1) -> None:
        """Append each value (a number or 0-d tensor) with weight ``count``."""
        if not isinstance(vars, dict):
            raise TypeError(f"LogBuffer.update: vars must be a dict, got {type(vars).__name__}")
        for key, value in vars.items():
            if isinstance(value, torch.Tensor | np.ndarray):
                value = value.item()
            self.val_history.setdefault(key, []).append(value)
            self.n_history.setdefault(key, []).append(count)

    def average(self, n: int = 0) -> None:
        """Weighted average of the last ``n`` values of each key (all when ``n == 0``)."""
        if n < 0:
            raise ValueError(f"LogBuffer.average: n must be >= 0, got {n}")
        for key, values in self.val_history.items():
            vals = np.asarray(values[-n:], dtype=np.float64)
            nums = np.asarray(self.n_history[key][-n:], dtype=np.float64)
            self.output[key] = float(np.sum(vals * nums) / np.sum(nums))
        self.ready = True


@HOOKS.register_module()
class IterTimerHook(Hook):
    """Logs ``data_time`` (waiting for the batch) and ``time`` (the whole iteration)."""

    def before_epoch(self, runner: Runner) -> None:
        self._t = time.time()

    def before_iter(self, runner: Runner) -> None:
        runner.log_buffer.update({"data_time": time.time() - self._t})

    def after_iter(self, runner: Runner) -> None:
        runner.log_buffer.update({"time": time.time() - self._t})
        self._t = time.time()


class LoggerHook(Hook):
    """Base logger: averages the buffer every ``interval`` iterations and calls :meth:`log`."""

    def __init__(
        self,
        interval: int = 10,
        ignore_last: bool = True,
        reset_flag: bool = False,
        by_epoch: bool = True,
    ) -> None:
        self.interval = interval
        self.ignore_last = ignore_last
        self.reset_flag = reset_flag
        self.by_epoch = by_epoch

    def log(self, runner: Runner) -> None:
        raise NotImplementedError

    def before_epoch(self, runner: Runner) -> None:
        # The last logger clears the output it logged (MMCV's rule).
        for hook in runner.hooks[::-1]:
            if isinstance(hook, LoggerHook):
                hook.reset_flag = True
                break

    def after_train_iter(self, runner: Runner) -> None:
        if (self.by_epoch and self.every_n_inner_iters(runner, self.interval)) or (
            not self.by_epoch and self.every_n_iters(runner, self.interval)
        ):
            runner.log_buffer.average(self.interval)
        elif self.end_of_epoch(runner) and not self.ignore_last:
            runner.log_buffer.average(runner.inner_iter + 1)
        if runner.log_buffer.ready:
            self.log(runner)
            if self.reset_flag:
                runner.log_buffer.clear_output()

    def after_train_epoch(self, runner: Runner) -> None:
        if runner.log_buffer.ready:
            self.log(runner)
            if self.reset_flag:
                runner.log_buffer.clear_output()

    def after_val_epoch(self, runner: Runner) -> None:
        runner.log_buffer.average()
        self.log(runner)
        if self.reset_flag:
            runner.log_buffer.clear_output()

    # --- what a log line says -------------------------------------------------------------
    @staticmethod
    def get_mode(runner: Runner) -> str:
        """``'train'`` for training lines, ``'val'`` for eval results and val losses."""
        if runner.mode == "train":
            return "train" if "time" in runner.log_buffer.output else "val"
        return str(runner.mode)

    @staticmethod
    def get_epoch(runner: Runner) -> int:
        """1-based epoch of the line."""
        return int(runner.epoch + 1 if runner.mode == "train" else runner.epoch)

    def get_iter(self, runner: Runner, inner_iter: bool = False) -> int:
        """1-based iteration (within the epoch when ``by_epoch`` and ``inner_iter``)."""
        if self.by_epoch and inner_iter:
            return int(runner.inner_iter + 1)
        return int(runner.iter + 1)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


@HOOKS.register_module()
class TextLoggerHook(LoggerHook):
    """Human log lines through ``runner.logger`` and ``<work_dir>/<timestamp>.log.json``.

    The JSON file starts with ``runner.meta``; then one object per logged interval with keys
    ``mode, epoch, iter, lr, [memory], <log buffer keys>`` and floats rounded to 5 decimals.
    """

    def __init__(
        self,
        by_epoch: bool = True,
        interval: int = 10,
        ignore_last: bool = True,
        reset_flag: bool = False,
        interval_exp_name: int = 1000,
        out_dir: str | None = None,
        out_suffix: str | tuple[str, ...] = (".log.json", ".log", ".py"),
        keep_local: bool = True,
    ) -> None:
        super().__init__(interval, ignore_last, reset_flag, by_epoch)
        self.interval_exp_name = interval_exp_name
        self.out_dir = out_dir
        self.out_suffix = out_suffix
        self.keep_local = keep_local
        self.time_sec_tot = 0.0
        self.json_log_path: str | None = None

    def before_run(self, runner: Runner) -> None:
        self.start_iter = runner.iter
        if runner.work_dir is None:
            return
        from detforge.utils.dist import get_dist_info

        if get_dist_info()[0] != 0:
            return
        os.makedirs(runner.work_dir, exist_ok=True)
        self.json_log_path = os.path.join(runner.work_dir, f"{runner.timestamp}.log.json")
        if runner.meta is not None:
            self._dump(dict(runner.meta))

    def _dump(self, record: dict[str, Any]) -> None:
        if self.json_log_path is None:
            return
        with open(self.json_log_path, "a") as f:
            f.write(json.dumps(_round(record), default=str) + "\n")

    def log(self, runner: Runner) -> None:
        record: OrderedDict[str, Any] = OrderedDict(
            mode=self.get_mode(runner),
            epoch=self.get_epoch(runner),
            iter=self.get_iter(runner, inner_iter=True),
        )
        lr = runner.current_lr()
        if isinstance(lr, dict):
            record["lr"] = {k: v[0] for k, v in lr.items() if v}
        elif lr:
            record["lr"] = lr[0]
        if torch.cuda.is_available() and "time" in runner.log_buffer.output:
            record["memory"] = int(torch.cuda.max_memory_allocated() / (1024 * 1024))
        record.update(runner.log_buffer.output)
        self._log_text(record, runner)
        self._dump(dict(record))

    def _log_text(self, record: dict[str, Any], runner: Runner) -> None:
        if (
            runner.meta is not None
            and "exp_name" in runner.meta
            and (
                self.every_n_iters(runner, self.interval_exp_name)
                or (self.by_epoch and self.end_of_epoch(runner))
            )
        ):
            runner.logger.info("Exp name: %s", runner.meta["exp_name"])
        if record["mode"] == "train":
            lr = record.get("lr")
            lr_str = (
                ", ".join(f"lr_{k}: {v:.3e}" for k, v in lr.items())
                if isinstance(lr, dict)
                else f"lr: {lr:.3e}"
                if lr is not None
                else ""
            )
            if self.by_epoch:
                total = self.iters_per_epoch(runner)
                head = f"Epoch [{record['epoch']}][{record['iter']}/{total}]\t"
            else:
                head = f"Iter [{record['iter']}/{runner.max_iters}]\t"
            parts = [lr_str] if lr_str else []
            if "time" in record:
                self.time_sec_tot += record["time"] * self.interval
                avg = self.time_sec_tot / max(runner.iter - self.start_iter + 1, 1)
                eta = avg * (runner.max_iters - runner.iter - 1) if runner.max_iters else 0
                parts.append(f"eta: {datetime.timedelta(seconds=int(eta))}")
                parts.append(f"time: {record['time']:.3f}, data_time: {record['data_time']:.3f}")
                if "memory" in record:
                    parts.append(f"memory: {record['memory']}")
        else:
            head = (
                f"Epoch({record['mode']}) [{record['epoch']}][{record['iter']}]\t"
                if self.by_epoch
                else f"Iter({record['mode']}) [{record['iter']}]\t"
            )
            parts = []
        skip = {"mode", "epoch", "iter", "lr", "time", "data_time", "memory"}
        for key, value in record.items():
            if key in skip:
                continue
            parts.append(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
        runner.logger.info(head + ", ".join(parts))
