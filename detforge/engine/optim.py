"""Optimizers from v2 ``optimizer=dict(type=..., paramwise_cfg=...)`` configs; LR scaling; clipping.

``build_optimizer`` follows MMCV 1.x's default optimizer constructor: without ``paramwise_cfg``
all parameters form one group; with it, every parameter gets its own group whose ``lr`` and
``weight_decay`` follow these rules (checked per parameter, in this order):

1. Frozen parameters (``requires_grad=False``) get a group with the optimizer's defaults.
2. With ``bypass_duplicate=True`` a parameter already in a group is skipped (with a warning).
3. ``custom_keys``: the longest key (ties: alphabetical order) that is a substring of the
   parameter's full name sets ``lr = lr * lr_mult`` and ``weight_decay = weight_decay *
   decay_mult`` (both mults default to 1); the rules below are then not applied.
4. ``bias_lr_mult`` scales the lr of every ``bias`` except those of normalisation layers; a
   ``Conv2d`` whose module path contains ``conv_offset`` gets ``lr * dcn_offset_lr_mult`` for
   its weight and bias instead.
5. When ``weight_decay`` is set: parameters of normalisation layers (BatchNorm, SyncBatchNorm,
   InstanceNorm, GroupNorm, LayerNorm) get ``norm_decay_mult``, else those of depthwise convs
   (``Conv2d`` with ``groups == in_channels``) get ``dwconv_decay_mult``, else biases get
   ``bias_decay_mult``.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from detforge.errors import ConfigError, ConfigKeyError, ConfigTypeError
from detforge.registry import OPTIMIZERS, build_module

__all__ = ["auto_scale_lr", "build_optimizer", "clip_grads"]

_PARAMWISE_KEYS = frozenset(
    {
        "bias_lr_mult",
        "bias_decay_mult",
        "norm_decay_mult",
        "dwconv_decay_mult",
        "dcn_offset_lr_mult",
        "custom_keys",
        "bypass_duplicate",
    }
)
_CUSTOM_KEY_KEYS = frozenset({"lr_mult", "decay_mult"})
_DECAY_MULTS = ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult")
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)
_CLIP_KEYS = frozenset({"max_norm", "norm_type", "error_if_nonfinite", "foreach"})


def _register_torch_optimizers() -> None:
    """Make every ``torch.optim`` optimizer buildable by its class name."""
    for name, obj in vars(torch.optim).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
            and name not in OPTIMIZERS
        ):
            OPTIMIZERS.register_module(name=name, module=obj)


_register_torch_optimizers()


def _check_paramwise_cfg(paramwise: Mapping[str, Any], base_wd: float | None) -> dict[str, Any]:
    unknown = sorted(set(paramwise) - _PARAMWISE_KEYS)
    if unknown:
        raise ConfigKeyError(
            f"optimizer.paramwise_cfg: unknown key(s) {unknown}; allowed: {sorted(_PARAMWISE_KEYS)}"
        )
    custom = paramwise.get("custom_keys", {})
    if not isinstance(custom, Mapping):
        raise ConfigTypeError(
            f"optimizer.paramwise_cfg.custom_keys must be a dict, got {type(custom).__name__}"
        )
    for key, value in custom.items():
        where = f"optimizer.paramwise_cfg.custom_keys[{key!r}]"
        if not isinstance(value, Mapping):
            raise ConfigTypeError(f"{where} must be a dict, got {type(value).__name__}")
        bad = sorted(set(value) - _CUSTOM_KEY_KEYS)
        if bad:
            raise ConfigKeyError(f"{where}: unknown key(s) {bad}; allowed: lr_mult, decay_mult")
        if "decay_mult" in value and base_wd is None:
            raise ConfigKeyError(f"{where} sets decay_mult but optimizer has no weight_decay")
    for key in _DECAY_MULTS:
        if key in paramwise and base_wd is None:
            raise ConfigKeyError(
                f"optimizer.paramwise_cfg.{key} is set but optimizer has no weight_decay"
            )
    return dict(paramwise)


def _already_added(param: nn.Parameter, groups: list[dict[str, Any]]) -> bool:
    return any(any(p is param for p in group["params"]) for group in groups)


def _add_param_groups(
    groups: list[dict[str, Any]],
    module: nn.Module,
    paramwise: Mapping[str, Any],
    base_lr: float,
    base_wd: float | None,
    prefix: str = "",
) -> None:
    """Append one group per parameter of ``module`` and its children (recursively)."""
    custom = paramwise.get("custom_keys", {})
    ordered_keys = sorted(sorted(custom), key=len, reverse=True)
    bias_lr_mult = paramwise.get("bias_lr_mult", 1.0)
    bias_decay_mult = paramwise.get("bias_decay_mult", 1.0)
    norm_decay_mult = paramwise.get("norm_decay_mult", 1.0)
    dwconv_decay_mult = paramwise.get("dwconv_decay_mult", 1.0)
    dcn_offset_lr_mult = paramwise.get("dcn_offset_lr_mult", 1.0)
    bypass_duplicate = paramwise.get("bypass_duplicate", False)

    is_norm = isinstance(module, _NORM_TYPES)
    is_conv2d = isinstance(module, nn.Conv2d)
    is_dwconv = is_conv2d and module.in_channels == module.groups
    for name, param in module.named_parameters(recurse=False):
        group: dict[str, Any] = {"params": [param]}
        if not param.requires_grad:
            groups.append(group)
            continue
        if bypass_duplicate and _already_added(param, groups):
            warnings.warn(
                f"{prefix}.{name} is shared with a module added before; it is skipped "
                "because paramwise_cfg.bypass_duplicate=True",
                stacklevel=2,
            )
            continue
        full_name = f"{prefix}.{name}"
        matched = next((key for key in ordered_keys if key in full_name), None)
        if matched is not None:
            group["lr"] = base_lr * custom[matched].get("lr_mult", 1.0)
            if base_wd is not None:
                group["weight_decay"] = base_wd * custom[matched].get("decay_mult", 1.0)
        else:
            if name == "bias" and not is_norm:
                group["lr"] = base_lr * bias_lr_mult
            if is_conv2d and "conv_offset" in prefix:
                group["lr"] = base_lr * dcn_offset_lr_mult
            if base_wd is not None:
                if is_norm:
                    group["weight_decay"] = base_wd * norm_decay_mult
                elif is_dwconv:
                    group["weight_decay"] = base_wd * dwconv_decay_mult
                elif name == "bias":
                    group["weight_decay"] = base_wd * bias_decay_mult
        groups.append(group)
    for child_name, child in module.named_children():
        child_prefix = f"{prefix}.{child_name}" if prefix else child_name
        _add_param_groups(groups, child, paramwise, base_lr, base_wd, child_prefix)


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the optimizer that a v2 ``optimizer=dict(...)`` config describes.

    Args:
        model: The model to optimise; a ``DataParallel``/DDP wrapper is looked through.
        cfg: ``dict(type='SGD', lr=..., ..., paramwise_cfg=None, constructor=None)``. ``type``
            is any ``torch.optim`` optimizer name (or one registered in ``OPTIMIZERS``);
            ``paramwise_cfg`` is described in the module docstring; ``constructor`` may only
            be ``'DefaultOptimizerConstructor'``.

    Raises:
        UnknownTypeError: ``type`` is not an optimizer (close names are suggested).
        ConfigError: a bad ``paramwise_cfg`` or ``constructor``.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        >>> opt = build_optimizer(model, dict(type='SGD', lr=0.02, momentum=0.9,
        ...     weight_decay=1e-4, paramwise_cfg=dict(norm_decay_mult=0.0)))
        >>> [g['weight_decay'] for g in opt.param_groups]
        [0.0001, 0.0001, 0.0, 0.0]
    """
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(f"optimizer: expected a config dict, got {type(cfg).__name__}")
    if hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    opt_cfg = copy.deepcopy(dict(cfg))
    constructor = opt_cfg.pop("constructor", None)
    if constructor not in (None, "DefaultOptimizerConstructor"):
        raise ConfigError(
            f"optimizer.constructor={constructor!r} is not supported; detforge only has "
            "'DefaultOptimizerConstructor' (remove the key to use it)"
        )
    paramwise = opt_cfg.pop("paramwise_cfg", None)
    if paramwise is not None and not isinstance(paramwise, Mapping):
        raise ConfigTypeError(
            f"optimizer.paramwise_cfg must be a dict or None, got {type(paramwise).__name__}"
        )
    base_lr = opt_cfg.get("lr")
    base_wd = opt_cfg.get("weight_decay")
    if not paramwise:
        params: Iterable[nn.Parameter] | list[dict[str, Any]] = model.parameters()
    else:
        rules = _check_paramwise_cfg(paramwise, base_wd)
        if base_lr is None:
            raise ConfigKeyError("optimizer.paramwise_cfg needs optimizer.lr to be set")
        groups: list[dict[str, Any]] = []
        _add_param_groups(groups, model, rules, base_lr, base_wd)
        params = groups
    optimizer: torch.optim.Optimizer = build_module(
        opt_cfg, OPTIMIZERS, {"params": params}, path="optimizer"
    )
    return optimizer


def auto_scale_lr(
    cfg_optimizer_lr: float, base_batch_size: int, num_gpus: int, samples_per_gpu: int
) -> float:
    """The learning rate scaled linearly to the actual total batch size (v2's ``auto_scale_lr``).

    Returns:
        ``cfg_optimizer_lr * num_gpus * samples_per_gpu / base_batch_size``.

    Raises:
        ValueError: a batch size, GPU count or sample count is not a positive number.

    Example:
        >>> auto_scale_lr(0.02, base_batch_size=16, num_gpus=1, samples_per_gpu=2)
        0.0025
    """
    for name, value in (
        ("auto_scale_lr.base_batch_size", base_batch_size),
        ("num_gpus", num_gpus),
        ("samples_per_gpu", samples_per_gpu),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return cfg_optimizer_lr * (num_gpus * samples_per_gpu) / base_batch_size


def clip_grads(
    params: Iterable[torch.Tensor], grad_clip_cfg: Mapping[str, Any]
) -> torch.Tensor | None:
    """Clip gradients by their total norm (v2's ``optimizer_config.grad_clip``).

    Args:
        params: Parameters; those without a gradient or not requiring one are ignored.
        grad_clip_cfg: ``dict(max_norm=35, norm_type=2)`` (``error_if_nonfinite`` and
            ``foreach`` are passed on as well).

    Returns:
        The total norm before clipping (a scalar tensor), or ``None`` when no parameter has a
        gradient.

    Raises:
        ConfigKeyError: ``max_norm`` is missing or a key is unknown.

    Example:
        >>> w = torch.zeros(2, requires_grad=True)
        >>> w.grad = torch.tensor([3.0, 4.0])
        >>> float(clip_grads([w], dict(max_norm=1, norm_type=2)))
        5.0
        >>> [round(float(g), 4) for g in w.grad]
        [0.6, 0.8]
    """
    unknown = sorted(set(grad_clip_cfg) - _CLIP_KEYS)
    if unknown:
        raise ConfigKeyError(
            f"optimizer_config.grad_clip: unknown key(s) {unknown}; allowed: {sorted(_CLIP_KEYS)}"
        )
    if "max_norm" not in grad_clip_cfg:
        raise ConfigKeyError("optimizer_config.grad_clip needs 'max_norm'")
    with_grad = [p for p in params if p.requires_grad and p.grad is not None]
    if not with_grad:
        return None
    return torch.nn.utils.clip_grad_norm_(with_grad, **dict(grad_clip_cfg))
