"""Normalisation layers and :func:`build_norm_layer` (mmcv 1.x names and conventions).

Registered names: ``BN`` / ``BN2d`` (``BatchNorm2d``), ``BN1d``, ``BN3d``, ``SyncBN``
(:class:`SyncBatchNorm`), ``MMSyncBN`` (:class:`MMSyncBatchNorm`), ``GN`` (``GroupNorm``),
``LN`` (``LayerNorm``), ``IN`` / ``IN2d`` (``InstanceNorm2d``), ``IN1d``, ``IN3d``.

The module name returned by :func:`build_norm_layer` is the layer's abbreviation plus a
postfix, as in mmcv: ``bn1``, ``gn``, ``ln``, ``in``. That name is what appears in state-dict
keys (``layer1.0.bn1.weight``), so it must not change.

``SyncBN`` deviates from mmcv on purpose: mmcv's ``SyncBatchNorm`` raises when it is trained
outside a multi-GPU process group; here it warns once per process and normalises with the
batch statistics of the local batch, exactly like ``BatchNorm2d``. Configs written for 8 GPUs
(``norm_cfg=dict(type='SyncBN')``) thus run unchanged on one CPU or GPU, and in a real
distributed run on GPUs the statistics are synchronised as usual.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from detforge.errors import ConfigKeyError
from detforge.models.layers._builder import _call, _resolve, _split_cfg
from detforge.registry import Registry

__all__ = [
    "NORM_LAYERS",
    "MMSyncBatchNorm",
    "SyncBatchNorm",
    "batch_norms_to_eval",
    "build_norm_layer",
    "infer_abbr",
]

NORM_LAYERS = Registry("norm layers")

_warned_sync_fallback = False


class SyncBatchNorm(nn.SyncBatchNorm):
    """``torch.nn.SyncBatchNorm`` that falls back to plain batch norm without a process group.

    In training mode, when ``torch.distributed`` is not initialised or the input is on the CPU,
    the layer warns once per process and behaves exactly as ``BatchNorm2d`` (local batch
    statistics, same running-average update). Parameters, buffers and state-dict keys are
    those of ``torch.nn.SyncBatchNorm`` (and of ``BatchNorm2d``).

    Example:
        >>> import warnings
        >>> layer = SyncBatchNorm(4)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter('ignore')
        ...     layer(torch.randn(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
    """

    _abbr_ = "bn"

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        synced = dist.is_available() and dist.is_initialized() and input.device.type != "cpu"
        if not self.training or synced:
            return super().forward(input)
        _warn_sync_fallback()
        return _BatchNorm.forward(self, input)


class MMSyncBatchNorm(SyncBatchNorm):
    """mmcv's ``MMSyncBN`` (``mmcv.ops.SyncBatchNorm``): :class:`SyncBatchNorm` with mmcv's
    arguments and initial weights.

    v2 configs use it in heads (``head_norm_cfg``) because it accepts empty batches (no RoIs
    on a GPU); detforge's :class:`SyncBatchNorm` does as well, and the running statistics are
    left unchanged by an empty batch. On one process it is batch norm; distributed, the
    statistics are averaged over all samples of all ranks, which is mmcv's ``stats_mode='N'``
    and equals ``'default'`` (ranks weighted equally) whenever the ranks hold equally many
    samples. As in mmcv the affine weight starts uniform in ``[0, 1)`` (``ConvModule`` sets it
    to 1). Unlike mmcv's class it is a ``_BatchNorm``, so ``norm_eval`` and
    ``init_cfg`` entries with ``layer='_BatchNorm'`` reach it. State-dict keys are batch
    norm's.

    Args:
        num_features: Channels.
        eps: Added to the variance.
        momentum: Running-average factor (``None``: cumulative average).
        affine: Learnable weight and bias.
        track_running_stats: Keep running statistics.
        group: Process group to synchronise over (``None``: the whole world).
        stats_mode: ``'default'`` or ``'N'`` (see above).

    Example:
        >>> layer = MMSyncBatchNorm(4).eval()
        >>> layer(torch.zeros(0, 4, 2, 2)).shape
        torch.Size([0, 4, 2, 2])
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        group: Any = None,
        stats_mode: str = "default",
    ) -> None:
        if stats_mode not in ("default", "N"):
            raise ValueError(f"MMSyncBN: stats_mode must be 'default' or 'N', got {stats_mode!r}")
        super().__init__(
            num_features,
            eps=eps,
            momentum=momentum,
            affine=affine,
            track_running_stats=track_running_stats,
            process_group=group,
        )
        self.stats_mode = stats_mode

    def reset_parameters(self) -> None:
        """mmcv's init: running statistics reset, weight ``U[0, 1)``, bias 0."""
        self.reset_running_stats()
        if self.affine:
            nn.init.uniform_(self.weight)
            nn.init.zeros_(self.bias)


def _warn_sync_fallback() -> None:
    global _warned_sync_fallback
    if _warned_sync_fallback:
        return
    _warned_sync_fallback = True
    warnings.warn(
        "SyncBN is trained without a distributed process group (or on the CPU): it normalises "
        "with the statistics of the local batch only, like BN (mmcv would raise here)",
        UserWarning,
        stacklevel=3,
    )


NORM_LAYERS.register_module(name=["BN", "BN2d"], module=nn.BatchNorm2d)
NORM_LAYERS.register_module(name="BN1d", module=nn.BatchNorm1d)
NORM_LAYERS.register_module(name="BN3d", module=nn.BatchNorm3d)
NORM_LAYERS.register_module(name="SyncBN", module=SyncBatchNorm)
NORM_LAYERS.register_module(name="MMSyncBN", module=MMSyncBatchNorm)
NORM_LAYERS.register_module(name="GN", module=nn.GroupNorm)
NORM_LAYERS.register_module(name="LN", module=nn.LayerNorm)
NORM_LAYERS.register_module(name=["IN", "IN2d"], module=nn.InstanceNorm2d)
NORM_LAYERS.register_module(name="IN1d", module=nn.InstanceNorm1d)
NORM_LAYERS.register_module(name="IN3d", module=nn.InstanceNorm3d)


def infer_abbr(class_type: type) -> str:
    """The abbreviation mmcv names a norm layer class by (``bn``, ``gn``, ``ln``, ``in``).

    A class attribute ``_abbr_`` wins; otherwise the class hierarchy decides (instance norm
    before batch norm, since PyTorch's instance norms derive from ``_NormBase`` too), and then
    the class name.

    Example:
        >>> infer_abbr(nn.BatchNorm2d), infer_abbr(nn.GroupNorm), infer_abbr(nn.InstanceNorm2d)
        ('bn', 'gn', 'in')
    """
    if not isinstance(class_type, type):
        raise TypeError(f"class_type must be a class, got {class_type!r}")
    abbr = getattr(class_type, "_abbr_", None)
    if isinstance(abbr, str):
        return abbr
    if issubclass(class_type, _InstanceNorm):
        return "in"
    if issubclass(class_type, _BatchNorm):
        return "bn"
    if issubclass(class_type, nn.GroupNorm):
        return "gn"
    if issubclass(class_type, nn.LayerNorm):
        return "ln"
    name = class_type.__name__.lower()
    for word, short in (("batch", "bn"), ("group", "gn"), ("layer", "ln"), ("instance", "in")):
        if word in name:
            return short
    return "norm_layer"


def build_norm_layer(
    cfg: Mapping[str, Any], num_features: int, postfix: int | str = ""
) -> tuple[str, nn.Module]:
    """Build a normalisation layer and the attribute name mmcv gives it.

    Args:
        cfg: ``dict(type=..., requires_grad=True, **layer_args)``; ``eps`` defaults to 1e-5,
            ``GN`` needs ``num_groups``. ``requires_grad=False`` freezes the affine parameters.
        num_features: Channels normalised (``num_channels`` for ``GN``, ``normalized_shape``
            for ``LN``).
        postfix: Appended to the abbreviation (``'bn' + '1'``).

    Returns:
        ``(name, layer)``, e.g. ``('bn1', BatchNorm2d(...))``.

    Raises:
        UnknownTypeError: ``type`` is not a registered norm layer.
        ConfigKeyError: ``GN`` without ``num_groups``.
        ConfigTypeError: ``cfg`` is not a dict or passes an argument the layer does not take.

    Example:
        >>> name, layer = build_norm_layer(dict(type='GN', num_groups=8), 32, postfix=2)
        >>> name, type(layer).__name__, layer.num_groups
        ('gn2', 'GroupNorm', 8)
    """
    layer_type, args = _split_cfg(cfg, "norm_cfg")
    cls = _resolve(NORM_LAYERS, layer_type, "norm_cfg")
    name = infer_abbr(cls) + str(postfix)
    requires_grad = bool(args.pop("requires_grad", True))
    args.setdefault("eps", 1e-5)
    if issubclass(cls, nn.GroupNorm):
        if "num_groups" not in args:
            raise ConfigKeyError(f"norm_cfg {dict(cfg)!r}: GN needs 'num_groups'")
        layer: nn.Module = _call(cls, "norm_cfg", cfg, num_channels=num_features, **args)
    else:
        layer = _call(cls, "norm_cfg", cfg, num_features, **args)
    for param in layer.parameters():
        param.requires_grad = requires_grad
    return name, layer


def batch_norms_to_eval(module: nn.Module) -> None:
    """Put every batch-norm layer in ``module`` (SyncBN included) in eval mode: the running
    statistics stay fixed while the rest trains (a backbone's ``norm_eval``).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)).train()
        >>> batch_norms_to_eval(net)
        >>> net.training, net[1].training
        (True, False)
    """
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
