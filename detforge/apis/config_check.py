"""Config mistakes found before any work: misspelt keys and metrics the dataset cannot compute.

v2 ignores a misspelt top-level key (``lr_confg``: the default schedule runs silently) and a
misspelt ``data`` key (``samples_per_gpus``), and fails on a misspelt ``evaluation`` key
(``metirc``) or an unsupported ``--eval`` metric only after a whole epoch or all of the
inference. :func:`check_config` and :func:`check_metrics` raise a
:class:`~detforge.errors.ConfigKeyError` with a did-you-mean before the first iteration/image.

A top-level key is only an error when it is not known *and* looks like a known one: configs
keep their own helper variables (``img_norm_cfg``, ``albu_train_transforms``, ...) at the top.
Keys v2 tolerated and configs keep (``workflow``, ``opencv_num_threads``, ``mp_start_method``,
``auto_scale_lr``, ``gpu_ids``, ``dist_params``, ...) are known.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from detforge.engine.hooks.eval_hook import DistEvalHook
from detforge.errors import ConfigKeyError
from detforge.registry import DATASETS
from detforge.utils.suggest import did_you_mean

__all__ = [
    "DATA_KEYS",
    "TOP_LEVEL_KEYS",
    "allowed_metrics",
    "check_config",
    "check_metrics",
    "dataset_class",
]

#: Top-level keys that v2 configs use (read by v2's tools or detforge, or tolerated).
TOP_LEVEL_KEYS = frozenset(
    {
        "model", "data", "evaluation", "optimizer", "optimizer_config", "lr_config",
        "momentum_config", "checkpoint_config", "log_config", "custom_hooks", "runner",
        "workflow", "work_dir", "load_from", "resume_from", "auto_resume", "dist_params",
        "log_level", "gpu_ids", "seed", "device", "opencv_num_threads", "mp_start_method",
        "auto_scale_lr", "fp16", "find_unused_parameters", "custom_imports", "total_epochs",
        "train_cfg", "test_cfg", "dataset_type", "data_root", "img_norm_cfg", "train_pipeline",
        "test_pipeline", "classes", "cudnn_benchmark", "gpu_id", "launcher", "deterministic",
        "img_scale", "num_classes", "norm_cfg", "pretrained",
    }
)  # fmt: skip

#: How close an unknown top-level key must be to a known one to be called a typo: no top-level
#: name of v2.28's 666 configs (``checkpoint``, ``max_epochs``, ``img_size``...) comes this close
_TOP_LEVEL_CUTOFF = 0.85

#: Keys of ``data`` (v2's ``compat_cfg`` and ``build_dataloader`` read them).
DATA_KEYS = frozenset(
    {
        "train", "val", "test", "samples_per_gpu", "workers_per_gpu", "imgs_per_gpu",
        "persistent_workers", "train_dataloader", "val_dataloader", "test_dataloader",
        "shuffle", "pin_memory", "class_aware_sampler", "sampler",
    }
)  # fmt: skip

_EVAL_HOOK_KEYS = frozenset(inspect.signature(DistEvalHook.__init__).parameters) - {
    "self",
    "dataloader",
    "eval_kwargs",
    "extra_eval_kwargs",
}
#: evaluation keys v2's mmcv EvalHook took (and detforge accepts as no-ops or passes on)
_V2_EVAL_KEYS = frozenset({"out_dir", "file_client_args", "greater_keys", "less_keys", "type"})


def dataset_class(cfg: Any) -> Any:
    """The dataset class a ``data.*`` config names (through wrappers), or ``None``."""
    while isinstance(cfg, Mapping):
        kind = cfg.get("type")
        cls = DATASETS.get(kind) if isinstance(kind, str) else kind
        if isinstance(cls, type) and hasattr(cls, "evaluate") and "dataset" not in cfg:
            return cls
        cfg = cfg.get("dataset", (cfg.get("datasets") or [None])[0])
    return None


def allowed_metrics(dataset_cls: Any) -> tuple[str, ...] | None:
    """The metrics a dataset class evaluates (its ``ALLOWED_METRICS``), or ``None``."""
    found = getattr(dataset_cls, "ALLOWED_METRICS", None)
    return tuple(found) if found is not None else None


def check_metrics(metrics: str | Sequence[str], dataset_cls: Any, where: str) -> None:
    """Raise unless every metric is one the dataset evaluates (a did-you-mean if close).

    Example:
        >>> from detforge.datasets import CocoDataset
        >>> check_metrics(['mAP'], CocoDataset, '--eval')
        Traceback (most recent call last):
        ...
        detforge.errors.ConfigKeyError: --eval: CocoDataset cannot evaluate 'mAP'; it evaluates bbox, segm, proposal, proposal_fast
    """  # noqa: E501
    allowed = allowed_metrics(dataset_cls)
    if allowed is None:
        return
    for metric in [metrics] if isinstance(metrics, str) else metrics:
        if metric not in allowed:
            raise ConfigKeyError(
                f"{where}: {dataset_cls.__name__} cannot evaluate {metric!r}; it evaluates "
                f"{', '.join(allowed)}{did_you_mean(metric, allowed)}"
            )


def _unknown(keys: Iterable[str], known: Iterable[str], where: str) -> None:
    known = sorted(known)
    for key in keys:
        if key not in known:
            raise ConfigKeyError(f"{where}: unknown key {key!r}{did_you_mean(key, known)}")


def check_config(cfg: Mapping[str, Any] | Any, validate: bool = True) -> None:
    """Check the keys of a (normalised) training config before anything is built.

    Args:
        cfg: The config.
        validate: Whether ``evaluation`` will be used (``--no-validate`` skips its check).

    Raises:
        ConfigKeyError: a top-level key that looks like a known one, an unknown ``data`` or
            ``evaluation`` key, or an ``evaluation.metric`` the val dataset cannot evaluate;
            each with a did-you-mean.

    Example:
        >>> check_config(dict(lr_confg=dict(policy='step')))
        Traceback (most recent call last):
        ...
        detforge.errors.ConfigKeyError: config: unknown key 'lr_confg'; did you mean 'lr_config'?
        >>> check_config(dict(checkpoint='https://...', data=dict(samples_per_gpu=2)))
    """
    for key in cfg:
        near = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=3, cutoff=_TOP_LEVEL_CUTOFF)
        if key not in TOP_LEVEL_KEYS and near:
            raise ConfigKeyError(
                f"config: unknown key {key!r}; did you mean {' or '.join(map(repr, near))}?"
            )
    data = cfg.get("data")
    if isinstance(data, Mapping):
        _unknown(data, DATA_KEYS, "data")
    evaluation = cfg.get("evaluation")
    if not validate or not isinstance(evaluation, Mapping) or not isinstance(data, Mapping):
        return
    dataset_cls = dataset_class(data.get("val"))
    evaluate_keys: set[str] = set()
    if dataset_cls is not None:
        params = inspect.signature(dataset_cls.evaluate).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return  # evaluate takes anything: nothing to check against
        evaluate_keys = set(params) - {"self", "results", "logger"}
    _unknown(evaluation, _EVAL_HOOK_KEYS | _V2_EVAL_KEYS | evaluate_keys, "evaluation")
    if "metric" in evaluation and dataset_cls is not None:
        check_metrics(evaluation["metric"], dataset_cls, "evaluation.metric")
