"""``EvalHook``/``DistEvalHook``: evaluate on a val loader during training, keep the best."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from detforge.engine.hooks.base import Hook
from detforge.engine.protocols import Runner
from detforge.engine.testing import multi_gpu_test, single_gpu_test
from detforge.errors import ConfigError, ConfigTypeError
from detforge.registry import HOOKS
from detforge.utils.dist import get_dist_info

__all__ = ["DistEvalHook", "EvalHook"]

_GREATER = ("acc", "top", "ar@", "auc", "precision", "map", "mdice", "miou", "macc", "aacc")
_LESS = ("loss",)


@HOOKS.register_module()
class EvalHook(Hook):
    """Run ``test_fn(model, dataloader)`` then ``dataloader.dataset.evaluate(results, ...)``.

    Args:
        dataloader: The val loader.
        start: First epoch (iteration) to evaluate at; None: follow ``interval`` from the start.
            As in v2 (mmcv), when ``start`` is at most the epoch (iteration) training begins
            at, the model is also evaluated once before the first one (``start=0`` over two
            epochs evaluates three times; a run resumed at epoch 2 with ``start=1`` evaluates
            before epoch 3 too).
        interval: Period in epochs (iterations when not ``by_epoch``).
        by_epoch: Evaluate after epochs rather than iterations.
        save_best: Metric key whose best value keeps ``best_<key>_epoch_N.pth``; ``'auto'``
            picks the first key the evaluation returns.
        rule: ``'greater'`` or ``'less'``; inferred from the key when None.
        test_fn: ``(model, dataloader) -> results``; default
            :func:`detforge.engine.testing.single_gpu_test`.
        dynamic_intervals: ``[(milestone, interval), ...]``: from epoch ``milestone`` on,
            evaluate every ``interval``.
        metric: Passed to ``evaluate``.
        val_loss: Also log the detector's losses on the val set (``val/loss``,
            ``val/loss_cls``, ...) next to the metrics (see
            :mod:`detforge.engine.hooks.val_loss`). ``None`` (default): on when the val set
            has box annotations and a loss pipeline can be derived, otherwise off with one
            info line; ``True``: required (an error says why it cannot be done); ``False``:
            off. It never changes the metrics nor the training that follows.
        eval_kwargs: Other keyword arguments for ``dataset.evaluate``.

    Example:
        >>> evaluation = dict(interval=1, metric='bbox', save_best='auto', val_loss=False)
    """

    def __init__(
        self,
        dataloader: Any,
        start: int | None = None,
        interval: int = 1,
        by_epoch: bool = True,
        save_best: str | None = None,
        rule: str | None = None,
        test_fn: Callable[[Any, Any], list[Any]] | None = None,
        dynamic_intervals: Sequence[tuple[int, int]] | None = None,
        metric: str | list[str] = "bbox",
        val_loss: bool | None = None,
        eval_kwargs: dict[str, Any] | None = None,
        **extra_eval_kwargs: Any,
    ) -> None:
        if not isinstance(dataloader, DataLoader) and not hasattr(dataloader, "dataset"):
            raise ConfigTypeError(
                f"EvalHook: dataloader must be a torch DataLoader (or have a .dataset to "
                f"evaluate with), got {type(dataloader).__name__}"
            )
        if interval <= 0:
            raise ValueError(f"EvalHook: interval must be positive, got {interval}")
        if start is not None and start < 0:
            raise ValueError(f"EvalHook: start must be >= 0, got {start}")
        if rule not in (None, "greater", "less"):
            raise ValueError(f"EvalHook: rule must be 'greater', 'less' or None, got {rule!r}")
        self.dataloader = dataloader
        self.start = start
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_best = save_best
        self.rule = rule
        if test_fn is None:
            test_fn = single_gpu_test
        self.test_fn: Callable[..., Any] = test_fn
        self.dynamic_intervals = sorted(dynamic_intervals or [])
        self.eval_kwargs = dict(eval_kwargs or {}, metric=metric, **extra_eval_kwargs)
        self.key_indicator = save_best if save_best != "auto" else None
        if self.key_indicator is not None:
            self._init_rule(self.key_indicator)
        self.best_ckpt_path: str | None = None
        self.val_loss = val_loss
        self._loss_loader: Any = None
        self._initial = True  # v2's initial_flag: the check before the first epoch/iteration

    def _init_rule(self, key: str) -> None:
        if self.rule is None:
            low = key.lower()
            if any(k in low for k in _LESS):
                self.rule = "less"
            elif any(k in low for k in _GREATER):
                self.rule = "greater"
            else:
                raise ValueError(
                    f"EvalHook: cannot infer the rule for save_best key {key!r}; pass rule="
                )

    def before_run(self, runner: Runner) -> None:
        msgs = (runner.meta or {}).get("hook_msgs", {})
        self.best_ckpt_path = msgs.get("best_ckpt")

    def before_train_epoch(self, runner: Runner) -> None:
        self._decide_interval(runner)
        if self.by_epoch and self._initial:
            self._initial = False
            if self.start is not None and runner.epoch >= self.start:
                self.after_train_epoch(runner)

    def before_train_iter(self, runner: Runner) -> None:
        self._decide_interval(runner)
        if not self.by_epoch and self._initial:
            self._initial = False
            if self.start is not None and runner.iter >= self.start:
                self.after_train_iter(runner)

    def _decide_interval(self, runner: Runner) -> None:
        progress = runner.epoch if self.by_epoch else runner.iter
        for milestone, interval in self.dynamic_intervals:
            if progress + 1 >= milestone:
                self.interval = interval

    def _should_evaluate(self, runner: Runner) -> bool:
        current = (runner.epoch if self.by_epoch else runner.iter) + 1
        if self.start is None:
            return current % self.interval == 0
        if current < self.start:
            return False
        return (current - self.start) % self.interval == 0

    def after_train_epoch(self, runner: Runner) -> None:
        if self.by_epoch and self._should_evaluate(runner):
            self._do_evaluate(runner)

    def after_train_iter(self, runner: Runner) -> None:
        if not self.by_epoch and self._should_evaluate(runner):
            runner.log_buffer.clear_output()
            self._do_evaluate(runner)

    def _do_evaluate(self, runner: Runner) -> None:
        results = self.test_fn(runner.model, self.dataloader)
        runner.model.train()
        losses = self.val_losses(runner)
        score = self.evaluate(runner, results)
        runner.log_buffer.output.update(losses)
        if self.save_best and score is not None:
            self._save_best(runner, score)

    def val_losses(self, runner: Runner) -> dict[str, float]:
        """``{'val/loss': ..., 'val/loss_cls': ...}`` on the val set, or ``{}`` when off."""
        from detforge.engine.hooks.val_loss import build_val_loss_loader, compute_val_losses

        if self.val_loss is False:
            return {}
        if self._loss_loader is not None:
            return compute_val_losses(runner.model, self._loss_loader)
        train_set = getattr(runner.data_loader, "dataset", None)
        try:
            self._loss_loader = build_val_loss_loader(self.dataloader, train_set)
            return compute_val_losses(runner.model, self._loss_loader)
        except ConfigError as exc:
            if self.val_loss:
                raise ConfigError(f"evaluation.val_loss=True: {exc}") from None
            runner.logger.info("no validation loss (evaluation.val_loss): %s", exc)
        except Exception as exc:  # auto mode: a derived pipeline that fails must not stop training
            if self.val_loss:
                raise
            runner.logger.warning(
                "validation loss switched off (set evaluation.val_loss=True to see the "
                "traceback, False to silence this): %s: %s",
                type(exc).__name__,
                exc,
            )
        self.val_loss = False
        self._loss_loader = None
        return {}

    def evaluate(self, runner: Runner, results: list[Any]) -> float | None:
        """Evaluate, put the metrics into the log buffer, return the ``save_best`` score."""
        res = self.dataloader.dataset.evaluate(results, logger=runner.logger, **self.eval_kwargs)
        for name, value in res.items():
            runner.log_buffer.output[name] = value
        runner.log_buffer.ready = True
        if not self.save_best:
            return None
        if self.key_indicator is None:
            if not res:
                raise ValueError("EvalHook: save_best='auto' but the evaluation returned nothing")
            self.key_indicator = next(iter(res))
            self._init_rule(self.key_indicator)
        if self.key_indicator not in res:
            raise KeyError(
                f"EvalHook: save_best key {self.key_indicator!r} not in results {list(res)}"
            )
        return float(res[self.key_indicator])

    def _save_best(self, runner: Runner, score: float) -> None:
        current = f"epoch_{runner.epoch + 1}" if self.by_epoch else f"iter_{runner.iter + 1}"
        if runner.meta is None:
            runner.meta = {}
        msgs = runner.meta.setdefault("hook_msgs", {})
        best = msgs.get("best_score", -math.inf if self.rule == "greater" else math.inf)
        better = score > best if self.rule == "greater" else score < best
        if not better:
            return
        msgs["best_score"] = score
        if self.best_ckpt_path and os.path.isfile(self.best_ckpt_path):
            os.remove(self.best_ckpt_path)
        name = f"best_{self.key_indicator}_{current}.pth"
        if runner.work_dir is None:
            raise ConfigError(
                f"evaluation.save_best={self.save_best!r}: the runner has no work_dir to save "
                f"{name} in"
            )
        self.best_ckpt_path = os.path.join(runner.work_dir, name)
        msgs["best_ckpt"] = self.best_ckpt_path
        runner.save_checkpoint(runner.work_dir, filename_tmpl=name, create_symlink=False)
        runner.logger.info("Now best checkpoint is saved as %s.", name)
        runner.logger.info("Best %s is %.4f at %s.", self.key_indicator, score, current)


@HOOKS.register_module()
class DistEvalHook(EvalHook):
    """:class:`EvalHook` for distributed runs: every rank tests its shard, rank 0 evaluates.

    Args (besides :class:`EvalHook`'s):
        tmpdir: Gather the ranks' results through pickles in this shared folder (see
            :func:`detforge.engine.testing.multi_gpu_test`).
        gpu_collect: Gather them with ``all_gather`` (also the default without ``tmpdir``).
        broadcast_bn_buffer: Before testing, copy rank 0's BatchNorm ``running_mean`` and
            ``running_var`` to the other ranks (DDP does not synchronise them), so every rank
            tests the same model.

    ``test_fn`` defaults to ``multi_gpu_test`` with ``tmpdir`` and ``gpu_collect``; one given
    instead must gather the results on rank 0 itself.

    Example:
        >>> evaluation = dict(interval=1, metric='bbox', gpu_collect=True)
    """

    def __init__(
        self,
        dataloader: Any,
        start: int | None = None,
        interval: int = 1,
        by_epoch: bool = True,
        save_best: str | None = None,
        rule: str | None = None,
        test_fn: Callable[[Any, Any], list[Any]] | None = None,
        dynamic_intervals: Sequence[tuple[int, int]] | None = None,
        metric: str | list[str] = "bbox",
        val_loss: bool | None = None,
        tmpdir: str | None = None,
        gpu_collect: bool = False,
        broadcast_bn_buffer: bool = True,
        eval_kwargs: dict[str, Any] | None = None,
        **extra_eval_kwargs: Any,
    ) -> None:
        super().__init__(
            dataloader,
            start=start,
            interval=interval,
            by_epoch=by_epoch,
            save_best=save_best,
            rule=rule,
            test_fn=test_fn,
            dynamic_intervals=dynamic_intervals,
            metric=metric,
            val_loss=val_loss,
            eval_kwargs=eval_kwargs,
            **extra_eval_kwargs,
        )
        if test_fn is None:
            self.test_fn = partial(multi_gpu_test, tmpdir=tmpdir, gpu_collect=gpu_collect)
        self.broadcast_bn_buffer = broadcast_bn_buffer

    def _do_evaluate(self, runner: Runner) -> None:

        if self.broadcast_bn_buffer and get_dist_info()[1] > 1:
            _broadcast_bn_buffers(runner.model)
        results = self.test_fn(runner.model, self.dataloader)
        runner.model.train()
        losses = self.val_losses(runner)  # every rank: the losses are all-reduced
        if get_dist_info()[0] != 0:
            return
        score = self.evaluate(runner, results)
        runner.log_buffer.output.update(losses)
        if self.save_best and score is not None:
            self._save_best(runner, score)


def _broadcast_bn_buffers(model: torch.nn.Module) -> None:
    """Overwrite every BatchNorm's running statistics with rank 0's."""
    import torch.distributed as dist

    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            assert module.running_var is not None and module.running_mean is not None
            dist.broadcast(module.running_var, 0)
            dist.broadcast(module.running_mean, 0)
