"""``DepthwiseSeparableConvModule``: a depthwise ``ConvModule`` then a pointwise one (mmcv 1.x)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers.conv_module import ConvModule
from detforge.registry import MODELS

__all__ = ["DepthwiseSeparableConvModule"]

_LayerCfg = Mapping[str, Any] | None
_RELU: Mapping[str, Any] = MappingProxyType({"type": "ReLU"})


@MODELS.register_module()
class DepthwiseSeparableConvModule(nn.Module):
    """A ``kernel_size`` depthwise conv (``groups=in_channels``) followed by a 1x1 conv.

    State-dict keys: ``depthwise_conv.*`` and ``pointwise_conv.*`` (each a
    :class:`~detforge.models.layers.ConvModule`: ``conv``, ``bn``, ...), as mmcv's.

    Args:
        in_channels: Input channels (also the depthwise conv's output channels).
        out_channels: Output channels of the pointwise conv.
        kernel_size: Kernel size of the depthwise conv.
        stride: Stride of the depthwise conv.
        padding: Padding of the depthwise conv.
        dilation: Dilation of the depthwise conv.
        norm_cfg: Norm config of both convs unless ``dw_norm_cfg``/``pw_norm_cfg`` say otherwise.
        act_cfg: Activation config of both convs unless ``dw_act_cfg``/``pw_act_cfg`` say
            otherwise.
        dw_norm_cfg: Norm config of the depthwise conv; ``'default'`` means ``norm_cfg``.
        dw_act_cfg: Activation config of the depthwise conv; ``'default'`` means ``act_cfg``.
        pw_norm_cfg: Norm config of the pointwise conv; ``'default'`` means ``norm_cfg``.
        pw_act_cfg: Activation config of the pointwise conv; ``'default'`` means ``act_cfg``.
        conv_cfg: Conv layer config of both convs.
        bias: ``bias`` of both convs (``'auto'``: a bias only without a norm layer).
        inplace: ``inplace`` of both activations.
        padding_mode: Padding mode of both convs.
        order: Layer order of both convs.

    Example:
        >>> m = DepthwiseSeparableConvModule(8, 16, 3, padding=1, norm_cfg=dict(type='BN'))
        >>> m.depthwise_conv.conv.groups, m(torch.randn(1, 8, 5, 5)).shape
        (8, torch.Size([1, 16, 5, 5]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        norm_cfg: _LayerCfg = None,
        act_cfg: _LayerCfg = _RELU,
        dw_norm_cfg: _LayerCfg | str = "default",
        dw_act_cfg: _LayerCfg | str = "default",
        pw_norm_cfg: _LayerCfg | str = "default",
        pw_act_cfg: _LayerCfg | str = "default",
        conv_cfg: _LayerCfg = None,
        bias: bool | str = "auto",
        inplace: bool = True,
        padding_mode: str = "zeros",
        order: Sequence[str] = ("conv", "norm", "act"),
    ) -> None:
        super().__init__()
        shared: dict[str, Any] = {
            "conv_cfg": conv_cfg,
            "bias": bias,
            "inplace": inplace,
            "padding_mode": padding_mode,
            "order": order,
        }
        self.depthwise_conv = ConvModule(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            norm_cfg=_or_default(dw_norm_cfg, norm_cfg, "dw_norm_cfg"),
            act_cfg=_or_default(dw_act_cfg, act_cfg, "dw_act_cfg"),
            **shared,
        )
        self.pointwise_conv = ConvModule(
            in_channels,
            out_channels,
            1,
            norm_cfg=_or_default(pw_norm_cfg, norm_cfg, "pw_norm_cfg"),
            act_cfg=_or_default(pw_act_cfg, act_cfg, "pw_act_cfg"),
            **shared,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H', W']``."""
        return self.pointwise_conv(self.depthwise_conv(x))


def _or_default(value: _LayerCfg | str, default: _LayerCfg, name: str) -> _LayerCfg:
    if isinstance(value, str):
        if value != "default":
            raise ValueError(
                f"DepthwiseSeparableConvModule: {name} must be a dict, None or "
                f"'default', got {value!r}"
            )
        return default
    return value
