"""Cross Stage Partial blocks of CSPDarknet and YOLOXPAFPN (MMDetection v2 ``utils/csp_layer``).

Sub-module names are v2's (``main_conv``, ``short_conv``, ``final_conv``, ``blocks.{i}.conv1`` /
``conv2``), so v2 YOLOX checkpoints load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers.conv_module import ConvModule
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.models.layers.init import apply_init_cfg
from detforge.registry import Cfg

__all__ = ["SWISH", "TORCH_DEFAULT_CONV_INIT", "YOLO_BN", "CSPLayer", "DarknetBottleneck"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None

YOLO_BN: Cfg = MappingProxyType({"type": "BN", "momentum": 0.03, "eps": 0.001})
"""The batch norm of YOLOX/YOLOv5 (momentum 0.03, eps 1e-3), v2's default for these blocks."""
SWISH: Cfg = MappingProxyType({"type": "Swish"})
TORCH_DEFAULT_CONV_INIT: Cfg = MappingProxyType(
    {
        "type": "Kaiming",
        "layer": "Conv2d",
        "a": math.sqrt(5),
        "distribution": "uniform",
        "mode": "fan_in",
        "nonlinearity": "leaky_relu",
    }
)
"""PyTorch's own ``Conv2d`` init (kaiming-uniform, ``a=sqrt(5)``): v2's default ``init_cfg`` of
CSPDarknet and YOLOXPAFPN."""


class DarknetBottleneck(nn.Module):
    """A 1x1 conv to ``out_channels * expansion`` then a 3x3 conv, plus the input if it fits.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        expansion: Hidden channels as a fraction of ``out_channels``.
        add_identity: Add the input to the output (only when ``in_channels == out_channels``).
        use_depthwise: Make the 3x3 conv a :class:`DepthwiseSeparableConvModule`.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        init_cfg: Initialisation config applied by :meth:`init_weights`.

    Example:
        >>> block = DarknetBottleneck(8, 8)
        >>> block.add_identity, block(torch.randn(1, 8, 4, 4)).shape
        (True, torch.Size([1, 8, 4, 4]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expansion: float = 0.5,
        add_identity: bool = True,
        use_depthwise: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = YOLO_BN,
        act_cfg: Cfg = SWISH,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.init_cfg = init_cfg
        self.conv1 = ConvModule(in_channels, hidden, 1, **layers)
        self.conv2 = conv(hidden, out_channels, 3, stride=1, padding=1, **layers)
        self.add_identity = add_identity and in_channels == out_channels

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H, W]``."""
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross Stage Partial layer: two 1x1 branches, bottlenecks on one, concat, 1x1 fuse.

    ``final_conv(cat(blocks(main_conv(x)), short_conv(x)))``; both branches have
    ``int(out_channels * expand_ratio)`` channels.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        expand_ratio: Branch channels as a fraction of ``out_channels``.
        num_blocks: Number of :class:`DarknetBottleneck` blocks on the main branch.
        add_identity: Whether the blocks add their input.
        use_depthwise: Depthwise separable 3x3 convs in the blocks.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        init_cfg: Initialisation config applied by :meth:`init_weights`.

    Example:
        >>> layer = CSPLayer(16, 8, num_blocks=2)
        >>> layer(torch.randn(1, 16, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: float = 0.5,
        num_blocks: int = 1,
        add_identity: bool = True,
        use_depthwise: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = YOLO_BN,
        act_cfg: Cfg = SWISH,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        mid = int(out_channels * expand_ratio)
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        self.init_cfg = init_cfg
        self.main_conv = ConvModule(in_channels, mid, 1, **layers)
        self.short_conv = ConvModule(in_channels, mid, 1, **layers)
        self.final_conv = ConvModule(2 * mid, out_channels, 1, **layers)
        self.blocks = nn.Sequential(
            *(
                DarknetBottleneck(
                    mid,
                    mid,
                    expansion=1.0,
                    add_identity=add_identity,
                    use_depthwise=use_depthwise,
                    **layers,
                )
                for _ in range(num_blocks)
            )
        )

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H, W]``."""
        main = self.blocks(self.main_conv(x))
        return self.final_conv(torch.cat((main, self.short_conv(x)), dim=1))
