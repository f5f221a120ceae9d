"""``InvertedResidual`` (MobileNetV2 / EfficientNet MBConv block) and ``make_divisible``.

Keys are MMDetection v2's: ``expand_conv``, ``depthwise_conv``, ``se.conv1``/``se.conv2``,
``linear_conv`` (each a ``ConvModule``: ``.conv``, ``.bn``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torchvision.ops import StochasticDepth

from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.se_layer import SELayer
from detforge.registry import Cfg

__all__ = ["InvertedResidual", "drop_path_layer", "make_divisible", "residual_forward"]

_BN: Cfg = MappingProxyType({"type": "BN"})
_RELU: Cfg = MappingProxyType({"type": "ReLU"})


def make_divisible(
    value: float, divisor: int, min_value: int | None = None, min_ratio: float = 0.9
) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``, default
    ``divisor``), one ``divisor`` higher if rounding lost more than ``1 - min_ratio`` of it.

    Example:
        >>> make_divisible(32 * 1.2, 8), make_divisible(16 * 1.1, 8), make_divisible(3, 8)
        (40, 16, 8)
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


def drop_path_layer(rate: float) -> nn.Module:
    """Per-sample stochastic depth with drop probability ``rate`` (identity when 0)."""
    return StochasticDepth(rate, mode="row") if rate > 0 else nn.Identity()


def residual_forward(
    branch: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    residual: bool,
    drop_path: nn.Module,
    with_cp: bool,
) -> torch.Tensor:
    """``x + drop_path(branch(x))`` (``branch(x)`` without ``residual``), checkpointed when
    ``with_cp`` and ``x`` requires grad."""

    def inner(t: torch.Tensor) -> torch.Tensor:
        out = branch(t)
        return t + drop_path(out) if residual else out

    if with_cp and x.requires_grad:
        result: torch.Tensor = checkpoint(inner, x, use_reentrant=False)
        return result
    return inner(x)


class InvertedResidual(nn.Module):
    """1x1 expansion → depthwise kxk → (squeeze-excitation) → linear 1x1, with a shortcut when
    the stride is 1 and the channels do not change.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Channels of the depthwise conv.
        kernel_size: Kernel size of the depthwise conv.
        stride: Stride of the depthwise conv (1 or 2).
        se_cfg: :class:`SELayer` arguments, or ``None`` for no SE layer.
        with_expand_conv: Build the 1x1 expansion (without it ``mid_channels`` must equal
            ``in_channels``).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config (not after the linear conv).
        drop_path_rate: Stochastic depth rate of the residual branch.
        with_cp: Gradient checkpointing.

    Example:
        >>> block = InvertedResidual(8, 8, 16, se_cfg=dict(channels=16, ratio=4)).eval()
        >>> block.with_res_shortcut, block(torch.rand(1, 8, 5, 5)).shape
        (True, torch.Size([1, 8, 5, 5]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        se_cfg: Mapping[str, Any] | None = None,
        with_expand_conv: bool = True,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _RELU,
        drop_path_rate: float = 0.0,
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        if not with_expand_conv and mid_channels != in_channels:
            raise ValueError(
                f"InvertedResidual: without expand conv mid_channels ({mid_channels}) must equal "
                f"in_channels ({in_channels})"
            )
        self.with_res_shortcut = stride == 1 and in_channels == out_channels
        self.with_cp = with_cp
        self.drop_path = drop_path_layer(drop_path_rate)
        self.with_se = se_cfg is not None
        self.with_expand_conv = with_expand_conv
        common: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg}
        if with_expand_conv:
            self.expand_conv = ConvModule(in_channels, mid_channels, 1, act_cfg=act_cfg, **common)
        self.depthwise_conv = ConvModule(
            mid_channels,
            mid_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=mid_channels,
            act_cfg=act_cfg,
            **common,
        )
        if se_cfg is not None:
            self.se = SELayer(**se_cfg)
        self.linear_conv = ConvModule(mid_channels, out_channels, 1, act_cfg=None, **common)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand_conv(x) if self.with_expand_conv else x
        out = self.depthwise_conv(out)
        if self.with_se:
            out = self.se(out)
        result: torch.Tensor = self.linear_conv(out)
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return residual_forward(
            self._branch, x, self.with_res_shortcut, self.drop_path, self.with_cp
        )
