"""Convolution and padding layer builders (mmcv 1.x names).

Conv names: ``Conv`` / ``Conv2d`` (``nn.Conv2d``), ``Conv1d``, ``Conv3d``, ``deconv``
(``nn.ConvTranspose2d``); the deformable
``DCN`` and ``DCNv2`` are registered by :mod:`detforge.models.layers.dcn`. Padding names:
``zero``, ``reflect``, ``replicate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from detforge.models.layers._builder import _call, _resolve, _split_cfg
from detforge.registry import Registry

__all__ = ["CONV_LAYERS", "PADDING_LAYERS", "build_conv_layer", "build_padding_layer"]

CONV_LAYERS = Registry("conv layers")
CONV_LAYERS.register_module(name=["Conv", "Conv2d"], module=nn.Conv2d)
CONV_LAYERS.register_module(name="Conv1d", module=nn.Conv1d)
CONV_LAYERS.register_module(name="Conv3d", module=nn.Conv3d)
CONV_LAYERS.register_module(name="deconv", module=nn.ConvTranspose2d)

PADDING_LAYERS = Registry("padding layers")
PADDING_LAYERS.register_module(name="zero", module=nn.ZeroPad2d)
PADDING_LAYERS.register_module(name="reflect", module=nn.ReflectionPad2d)
PADDING_LAYERS.register_module(name="replicate", module=nn.ReplicationPad2d)


def build_conv_layer(cfg: Mapping[str, Any] | None, *args: Any, **kwargs: Any) -> nn.Module:
    """Build a convolution layer: ``cls(*args, **kwargs, **cfg_without_type)``.

    Args:
        cfg: ``dict(type=..., **layer_args)``, or ``None`` for ``nn.Conv2d``.
        *args: Positional arguments of the layer (``in_channels, out_channels, kernel_size``).
        **kwargs: Keyword arguments of the layer (``stride``, ``padding``, ``bias``, ...).

    Raises:
        UnknownTypeError: ``type`` is not a registered conv layer.
        ConfigTypeError: ``cfg`` is not a dict, or an argument is not accepted by the layer.

    Example:
        >>> build_conv_layer(None, 3, 8, 3, padding=1, bias=False)
        Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
    """
    cfg = {"type": "Conv2d"} if cfg is None else cfg
    layer_type, layer_args = _split_cfg(cfg, "conv_cfg")
    cls = _resolve(CONV_LAYERS, layer_type, "conv_cfg")
    clash = sorted(set(layer_args) & set(kwargs))
    if clash:
        raise TypeError(f"conv_cfg {dict(cfg)!r} sets {clash}, which the caller also passes")
    layer: nn.Module = _call(cls, "conv_cfg", cfg, *args, **kwargs, **layer_args)
    return layer


def build_padding_layer(cfg: Mapping[str, Any], *args: Any, **kwargs: Any) -> nn.Module:
    """Build a padding layer (``zero``, ``reflect`` or ``replicate``).

    Example:
        >>> build_padding_layer(dict(type='reflect'), 2)
        ReflectionPad2d((2, 2, 2, 2))
    """
    layer_type, layer_args = _split_cfg(cfg, "padding cfg")
    cls = _resolve(PADDING_LAYERS, layer_type, "padding cfg")
    layer: nn.Module = _call(cls, "padding cfg", cfg, *args, **kwargs, **layer_args)
    return layer
