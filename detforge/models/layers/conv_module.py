"""``ConvModule``: convolution + normalisation + activation, as mmcv 1.x builds it."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from detforge.models.layers.activation import accepts_inplace, build_activation_layer
from detforge.models.layers.conv import build_conv_layer, build_padding_layer
from detforge.models.layers.norm import build_norm_layer
from detforge.models.layers.plugin import PLUGIN_LAYERS
from detforge.models.layers.weight_init import constant_init, kaiming_init
from detforge.registry import MODELS

__all__ = ["ConvModule"]

_NATIVE_PADDING = ("zeros", "circular")


@PLUGIN_LAYERS.register_module()  # a plugin too: GRoIE's pre_cfg (mmcv)
@MODELS.register_module()
class ConvModule(nn.Module):
    """A convolution with optional normalisation and activation, applied in ``order``.

    Sub-module names are mmcv's, so state-dict keys match MMDetection checkpoints: ``conv``,
    the norm layer under its abbreviation (``bn``, ``gn``, ``ln``, ``in``), ``activate``, and
    ``padding_layer`` for non-native padding modes.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size.
        stride: Stride.
        padding: Padding on each side.
        dilation: Dilation.
        groups: Convolution groups.
        bias: ``'auto'`` (a bias only without a norm layer) or a bool.
        conv_cfg: Conv layer config (``None`` = ``nn.Conv2d``; ``dict(type='DCNv2')``, ...).
        norm_cfg: Norm layer config (``dict(type='BN')``, ``dict(type='GN', num_groups=32)``),
            or ``None``.
        act_cfg: Activation config (default ReLU), or ``None``.
        inplace: ``inplace`` of the activation, for activations that take one.
        with_spectral_norm: Wrap the conv in ``nn.utils.spectral_norm``.
        padding_mode: ``'zeros'`` and ``'circular'`` are done by the conv itself; ``'zero'``,
            ``'reflect'`` and ``'replicate'`` by an explicit padding layer.
        order: Order of ``'conv'``, ``'norm'`` and ``'act'``. A norm before the conv
            normalises ``in_channels``.

    Example:
        >>> m = ConvModule(3, 8, 3, padding=1, norm_cfg=dict(type='BN'))
        >>> [name for name, _ in m.named_children()]
        ['conv', 'bn', 'activate']
        >>> m(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool | str = "auto",
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] | None = None,
        act_cfg: Mapping[str, Any] | None = {"type": "ReLU"},
        inplace: bool = True,
        with_spectral_norm: bool = False,
        padding_mode: str = "zeros",
        order: Sequence[str] = ("conv", "norm", "act"),
    ) -> None:
        super().__init__()
        order = tuple(order)
        if len(order) != 3 or set(order) != {"conv", "norm", "act"}:
            raise ValueError(f"order must be a permutation of ('conv', 'norm', 'act'), got {order}")
        if bias != "auto" and not isinstance(bias, bool):
            raise ValueError(f"bias must be 'auto' or a bool, got {bias!r}")
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.inplace = inplace
        self.with_spectral_norm = with_spectral_norm
        self.with_explicit_padding = padding_mode not in _NATIVE_PADDING
        self.order = order
        self.with_norm = norm_cfg is not None
        self.with_activation = act_cfg is not None
        self.with_bias = (not self.with_norm) if bias == "auto" else bool(bias)

        if self.with_explicit_padding:
            self.padding_layer = build_padding_layer({"type": padding_mode}, padding)
        conv_kwargs: dict[str, Any] = {}
        if padding_mode == "circular":
            conv_kwargs["padding_mode"] = "circular"
        self.conv = build_conv_layer(
            conv_cfg,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0 if self.with_explicit_padding else padding,
            dilation=dilation,
            groups=groups,
            bias=self.with_bias,
            **conv_kwargs,
        )
        conv: Any = self.conv
        self.in_channels = conv.in_channels
        self.out_channels = conv.out_channels
        self.kernel_size = conv.kernel_size
        self.stride = conv.stride
        self.padding = padding
        self.dilation = conv.dilation
        self.transposed = conv.transposed
        self.output_padding = conv.output_padding
        self.groups = conv.groups
        if with_spectral_norm:
            self.conv = nn.utils.spectral_norm(self.conv)

        self.norm_name: str | None = None
        if norm_cfg is not None:
            after_conv = order.index("norm") > order.index("conv")
            self.norm_name, norm = build_norm_layer(
                norm_cfg, out_channels if after_conv else in_channels
            )
            self.add_module(self.norm_name, norm)
            if self.with_bias and isinstance(norm, _BatchNorm | _InstanceNorm):
                warnings.warn("Unnecessary conv bias before batch/instance norm", stacklevel=2)

        if act_cfg is not None:
            act_args = dict(act_cfg)
            if "type" in act_args and accepts_inplace(act_args["type"]):
                act_args.setdefault("inplace", inplace)
            self.activate = build_activation_layer(act_args)

        self.init_weights()

    @property
    def norm(self) -> nn.Module | None:
        """The norm layer, or ``None``."""
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self) -> None:
        """mmcv's default: Kaiming (fan_out) for a conv without its own init, norm weight 1.

        Convs that define ``init_weights`` (the deformable ones) keep their own init; a
        LeakyReLU activation sets Kaiming's ``a`` to its negative slope.
        """
        if not hasattr(self.conv, "init_weights"):
            if self.act_cfg is not None and self.act_cfg.get("type") == "LeakyReLU":
                nonlinearity, a = "leaky_relu", self.act_cfg.get("negative_slope", 0.01)
            else:
                nonlinearity, a = "relu", 0
            kaiming_init(self.conv, a=a, nonlinearity=nonlinearity)
        norm = self.norm
        if norm is not None:
            constant_init(norm, 1, bias=0)

    def forward(self, x: torch.Tensor, activate: bool = True, norm: bool = True) -> torch.Tensor:
        """Apply the layers in ``order``; ``activate``/``norm`` False skip those layers."""
        for layer in self.order:
            if layer == "conv":
                if self.with_explicit_padding:
                    x = self.padding_layer(x)
                x = self.conv(x)
            elif layer == "norm" and norm and self.norm_name:
                x = getattr(self, self.norm_name)(x)
            elif layer == "act" and activate and self.with_activation:
                x = self.activate(x)
        return x
