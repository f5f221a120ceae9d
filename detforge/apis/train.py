"""Train a detector from a v2 config: loaders, optimizer, runner, hooks, resume (v2's
``mmdet/apis/train.py``)."""

from __future__ import annotations

import copy
import logging
import os
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.datasets.builder import build_dataloader, build_dataset
from detforge.engine.checkpoint_save import find_latest_checkpoint
from detforge.engine.optim import auto_scale_lr, build_optimizer
from detforge.engine.protocols import Runner
from detforge.models.detectors.base import parse_losses
from detforge.registry import HOOKS, build_module
from detforge.utils.dist import get_dist_info

__all__ = ["init_random_seed", "set_random_seed", "train_detector", "wrap_distributed"]

_LOG = logging.getLogger("detforge")


def init_random_seed(seed: int | None = None) -> int:
    """``seed`` itself, or (when ``None``) a random one shared by every rank.

    Example:
        >>> init_random_seed(7)
        7
    """
    from detforge.utils.dist import sync_random_seed

    return sync_random_seed(seed)


def set_random_seed(seed: int, deterministic: bool = False) -> None:
    """Seed ``random``, numpy and torch (all devices); ``deterministic`` also makes cuDNN
    deterministic and turns its autotuner off.

    Example:
        >>> set_random_seed(0)
        >>> a = torch.rand(1); set_random_seed(0); bool(torch.rand(1) == a)
        True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if isinstance(cfg, Mapping) else default


class _DetDDP(nn.parallel.DistributedDataParallel):
    """DDP whose ``train_step``/``val_step`` run the detector's forward through DDP (so the
    gradients are synchronised) and parse the losses as the detector does."""

    def train_step(self, data: Mapping[str, Any], optimizer: Any = None) -> dict[str, Any]:
        losses = self(**data)
        loss, log_vars = parse_losses(losses)
        return dict(loss=loss, log_vars=log_vars, num_samples=len(data["img_metas"]))

    def val_step(self, data: Mapping[str, Any], optimizer: Any = None) -> dict[str, Any]:
        return self.train_step(data, optimizer)


def wrap_distributed(model: nn.Module, device: str, find_unused_parameters: bool = False) -> Any:
    """Wrap ``model`` for DDP training (``wrapped.module`` is the detector)."""
    device_ids = [torch.cuda.current_device()] if device == "cuda" else None
    with warnings.catch_warnings():
        # torch deprecates broadcast_buffers but says to keep broadcast_buffers=False (rank-local
        # BatchNorm buffers, as v2) until init_sync_buffers exists; one warning per rank is noise
        warnings.filterwarnings(
            "ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning
        )
        return _DetDDP(
            model,
            device_ids=device_ids,
            broadcast_buffers=False,
            find_unused_parameters=find_unused_parameters,
        )


def _train_loader_args(cfg: Any, distributed: bool, runner_type: str) -> dict[str, Any]:
    data = cfg.data
    args: dict[str, Any] = dict(
        samples_per_gpu=2,
        workers_per_gpu=2,
        num_gpus=len(cfg.get("gpu_ids") or [0]),
        dist=distributed,
        seed=cfg.get("seed"),
        runner_type=runner_type,
        persistent_workers=False,
    )
    for key in ("samples_per_gpu", "workers_per_gpu", "persistent_workers"):
        if key in data:
            args[key] = data[key]
    args.update(dict(data.get("train_dataloader") or {}))
    return args


def _device(cfg: Any) -> str:
    device = cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return str(device)


def _register_eval_hook(runner: Runner, cfg: Any, distributed: bool, runner_type: str) -> None:
    val_cfg = copy.deepcopy(dict(cfg.data.val))
    val_cfg["test_mode"] = True
    val_dataset = build_dataset(val_cfg)
    loader_args: dict[str, Any] = dict(
        samples_per_gpu=cfg.data.val.get("samples_per_gpu", 1),
        workers_per_gpu=cfg.data.get("workers_per_gpu", 2),
        dist=distributed,
        shuffle=False,
        persistent_workers=False,
    )
    loader_args.update(dict(cfg.data.get("val_dataloader") or {}))
    val_loader = build_dataloader(val_dataset, **loader_args)
    eval_cfg = dict(cfg.get("evaluation") or {})
    eval_cfg["by_epoch"] = runner_type != "IterBasedRunner"
    if not distributed:  # how ranks' results are gathered: no meaning for one process
        for key in ("tmpdir", "gpu_collect", "broadcast_bn_buffer"):
            eval_cfg.pop(key, None)
    hook_type = "DistEvalHook" if distributed else "EvalHook"
    hook = build_module(dict(type=hook_type, dataloader=val_loader, **eval_cfg), HOOKS)
    runner.register_hook(hook, priority="LOW")


def train_detector(
    model: nn.Module,
    dataset: Any,
    cfg: Any,
    distributed: bool = False,
    validate: bool = False,
    timestamp: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Any:
    """Train ``model`` on ``dataset`` as ``cfg`` (a normalised v2 config) describes.

    Args:
        model: A built detector (``init_weights`` already called).
        dataset: The training dataset, or a list of them (one per ``workflow`` phase).
        cfg: The config; uses ``data``, ``optimizer``, ``optimizer_config``, ``lr_config``,
            ``momentum_config``, ``checkpoint_config``, ``log_config``, ``custom_hooks``,
            ``evaluation``, ``runner``, ``workflow``, ``work_dir``, ``seed``, ``device``,
            ``auto_scale_lr``, ``resume_from``, ``load_from``, ``auto_resume``, ``fp16``.
        distributed: Wrap the model in DDP and use distributed samplers.
        validate: Register the evaluation hook on ``data.val``.
        timestamp: Names the log files (the runner's own timestamp otherwise).
        meta: Stored in checkpoints and the first log line.

    Returns:
        The runner, after it finished.
    """
    from detforge.engine import hooks as _hooks  # registers the v2 hook names
    from detforge.engine.runner import build_runner

    datasets = list(dataset) if isinstance(dataset, list | tuple) else [dataset]
    runner_cfg = dict(cfg.get("runner") or dict(type="EpochBasedRunner", max_epochs=12))
    runner_type = runner_cfg.get("type", "EpochBasedRunner")
    loader_args = _train_loader_args(cfg, distributed, runner_type)
    data_loaders = [build_dataloader(ds, **loader_args) for ds in datasets]

    scale = cfg.get("auto_scale_lr") or {}
    if scale.get("enable", False):
        if "base_batch_size" not in scale:
            raise KeyError("auto_scale_lr.enable is set but auto_scale_lr.base_batch_size is not")
        _, world_size = get_dist_info()
        num_gpus = world_size if distributed else loader_args["num_gpus"]
        new_lr = auto_scale_lr(
            cfg.optimizer.lr, scale["base_batch_size"], num_gpus, loader_args["samples_per_gpu"]
        )
        _LOG.info("auto_scale_lr: optimizer.lr %s -> %s", cfg.optimizer.lr, new_lr)
        cfg.optimizer.lr = new_lr

    device = _device(cfg)
    model = model.to(device)
    runner_model: Any = model
    if distributed:
        runner_model = wrap_distributed(model, device, cfg.get("find_unused_parameters", False))
    optimizer = build_optimizer(model, cfg.optimizer)

    runner = build_runner(
        runner_cfg,
        default_args=dict(
            model=runner_model,
            optimizer=optimizer,
            work_dir=cfg.work_dir,
            logger=_LOG,
            meta=meta,
        ),
    )
    if timestamp is not None:
        runner.timestamp = timestamp

    optimizer_config = cfg.get("optimizer_config")
    fp16 = cfg.get("fp16")
    if fp16 is not None:
        base = dict(optimizer_config or {})
        optimizer_config = dict(type=base.pop("type", "Fp16OptimizerHook"), **base, **dict(fp16))
        if optimizer_config["type"] == "OptimizerHook":
            optimizer_config["type"] = "Fp16OptimizerHook"
        optimizer_config.setdefault("distributed", distributed)
    elif distributed and optimizer_config is not None and "type" not in optimizer_config:
        optimizer_config = dict(type="OptimizerHook", **dict(optimizer_config))

    runner.register_training_hooks(
        cfg.lr_config,
        optimizer_config,
        cfg.get("checkpoint_config"),
        cfg.get("log_config"),
        cfg.get("momentum_config"),
        custom_hooks_config=cfg.get("custom_hooks"),
    )
    if distributed and runner_type == "EpochBasedRunner":
        runner.register_hook(
            build_module(dict(type="DistSamplerSeedHook"), HOOKS), priority="NORMAL"
        )
    if validate:
        _register_eval_hook(runner, cfg, distributed, runner_type)
    _hooks.register_default_checks(runner)  # class count and non-finite loss, always on

    resume_from = cfg.get("resume_from")
    if resume_from is None and cfg.get("auto_resume"):
        resume_from = _latest_checkpoint(cfg.work_dir)
    if resume_from is not None:
        cfg.resume_from = resume_from
        runner.resume(resume_from)
    elif cfg.get("load_from"):
        runner.load_checkpoint(cfg.load_from)
    os.makedirs(cfg.work_dir, exist_ok=True)
    runner.run(data_loaders, _workflow(cfg.get("workflow") or [("train", 1)]))
    return runner


def _latest_checkpoint(work_dir: str) -> str | None:
    """``find_latest_checkpoint`` with its warnings (unreadable files skipped) in the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = find_latest_checkpoint(work_dir)
    for warning in caught:
        _LOG.warning("auto-resume: %s", warning.message)
    if found is None:
        _LOG.info("auto-resume: no checkpoint in %s, training from the start", work_dir)
    return found


def _workflow(workflow: Sequence[Any]) -> list[tuple[str, int]]:
    return [(str(mode), int(n)) for mode, n in workflow]
