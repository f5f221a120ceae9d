"""MobileNetV2's inverted residual block and the channel rounding of MobileNets.

Sub-module names are MMDetection v2's (``expand_conv``, ``depthwise_conv``, ``linear_conv``), so
v2 MobileNetV2 checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.init import apply_init_cfg
from detforge.registry import Cfg

__all__ = ["InvertedResidual", "make_divisible"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_BN: Cfg = MappingProxyType({"type": "BN"})
_RELU: Cfg = MappingProxyType({"type": "ReLU"})


def make_divisible(
    value: float, divisor: int, min_value: int | None = None, min_ratio: float = 0.9
) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, losing at most 10 %.

    Args:
        value: The channel count to round.
        divisor: The multiple to round to.
        min_value: Smallest result (default ``divisor``).
        min_ratio: If rounding down would leave less than ``min_ratio * value``, round up.

    Example:
        >>> make_divisible(32 * 0.25, 8), make_divisible(24 * 0.35, 8), make_divisible(100, 8)
        (8, 8, 104)
    """
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < min_ratio * value else rounded


class InvertedResidual(nn.Module):
    """1x1 expansion, depthwise ``kernel_size`` conv, linear 1x1 projection (+ identity).

    The shortcut is added when ``stride == 1`` and ``in_channels == out_channels``; the
    projection (``linear_conv``) has no activation.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Channels of the depthwise conv.
        kernel_size: Kernel size of the depthwise conv.
        stride: Stride of the depthwise conv, 1 or 2.
        with_expand_conv: Build the 1x1 expansion (``mid_channels`` must equal
            ``in_channels`` without it).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config of the expansion and depthwise convs.
        with_cp: Checkpoint the block to save memory when training.
        init_cfg: Initialisation config applied by :meth:`init_weights`.

    Example:
        >>> block = InvertedResidual(8, 8, mid_channels=48)
        >>> block.with_res_shortcut, block(torch.randn(1, 8, 6, 6)).shape
        (True, torch.Size([1, 8, 6, 6]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        with_expand_conv: bool = True,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _RELU,
        with_cp: bool = False,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        if not with_expand_conv and mid_channels != in_channels:
            raise ValueError(
                f"InvertedResidual: without the expansion conv mid_channels ({mid_channels}) "
                f"must equal in_channels ({in_channels})"
            )
        self.with_res_shortcut = stride == 1 and in_channels == out_channels
        self.with_expand_conv = with_expand_conv
        self.with_cp = with_cp
        self.init_cfg = init_cfg
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg}
        if with_expand_conv:
            self.expand_conv = ConvModule(in_channels, mid_channels, 1, act_cfg=act_cfg, **layers)
        self.depthwise_conv = ConvModule(
            mid_channels,
            mid_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=mid_channels,
            act_cfg=act_cfg,
            **layers,
        )
        self.linear_conv = ConvModule(mid_channels, out_channels, 1, act_cfg=None, **layers)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand_conv(x) if self.with_expand_conv else x
        out = self.linear_conv(self.depthwise_conv(out))
        return x + out if self.with_res_shortcut else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H / stride, W / stride]``."""
        if self.with_cp and x.requires_grad:
            out: torch.Tensor = checkpoint(self._residual, x, use_reentrant=False)
            return out
        return self._residual(x)
