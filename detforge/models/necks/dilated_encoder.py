"""``DilatedEncoder``: YOLOF's single-level neck (MMDetection v2 layout, defaults and init).

State-dict keys: ``lateral_conv``, ``lateral_norm``, ``fpn_conv``, ``fpn_norm`` (plain
``Conv2d`` / ``BatchNorm2d``) and ``dilated_encoder_blocks.{i}.conv{1,2,3}`` (ConvModules).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from detforge.models.layers import ConvModule, caffe2_xavier_init, constant_init, normal_init
from detforge.registry import MODELS, Cfg

__all__ = ["DilatedBottleneck", "DilatedEncoder"]

_BN: Cfg = MappingProxyType({"type": "BN", "requires_grad": True})
_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)


class DilatedBottleneck(nn.Module):
    """``x + conv3(conv2(conv1(x)))``: 1x1 down to ``mid_channels``, dilated 3x3, 1x1 back.

    Each conv is a ConvModule with BN and ReLU (the last one too, before the sum), as v2's
    ``dilated_encoder.Bottleneck``.

    Example:
        >>> DilatedBottleneck(8, 4, dilation=2)(torch.rand(1, 8, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self, in_channels: int, mid_channels: int, dilation: int, norm_cfg: Cfg = _BN
    ) -> None:
        super().__init__()
        self.conv1 = ConvModule(in_channels, mid_channels, 1, norm_cfg=norm_cfg)
        self.conv2 = ConvModule(
            mid_channels, mid_channels, 3, padding=dilation, dilation=dilation, norm_cfg=norm_cfg
        )
        self.conv3 = ConvModule(mid_channels, in_channels, 1, norm_cfg=norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C, H, W]`` -> ``Tensor[B, C, H, W]``."""
        out: torch.Tensor = self.conv3(self.conv2(self.conv1(x))) + x
        return out


@MODELS.register_module()
class DilatedEncoder(nn.Module):
    """The Dilated Encoder of YOLOF: a projector and dilated residual blocks on the last map.

    ``lateral_norm(lateral_conv(x))`` (1x1 to ``out_channels``), ``fpn_norm(fpn_conv(.))``
    (3x3), then ``num_residual_blocks`` :class:`DilatedBottleneck` s with
    ``block_dilations``. Only the last input level is used; the output is a 1-tuple.

    Args:
        in_channels: Channels of the last backbone map.
        out_channels: Channels of the output.
        block_mid_channels: Middle channels of the residual blocks.
        num_residual_blocks: Number of residual blocks.
        block_dilations: Dilation of each residual block.

    :meth:`init_weights` is v2's: caffe2-Xavier for the projector convs, normal (std 0.01)
    for the block convs, 1 for every norm weight.

    Example:
        >>> neck = DilatedEncoder(16, 8, 4, num_residual_blocks=2, block_dilations=[2, 4])
        >>> [tuple(f.shape) for f in neck([torch.rand(1, 16, 6, 6)])]
        [(1, 8, 6, 6)]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        block_mid_channels: int,
        num_residual_blocks: int,
        block_dilations: Sequence[int],
    ) -> None:
        super().__init__()
        if len(block_dilations) != num_residual_blocks:
            raise ValueError(
                f"DilatedEncoder: block_dilations {list(block_dilations)} needs "
                f"num_residual_blocks={num_residual_blocks} entries"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.block_mid_channels = block_mid_channels
        self.num_residual_blocks = num_residual_blocks
        self.block_dilations = list(block_dilations)
        self.lateral_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.lateral_norm = nn.BatchNorm2d(out_channels)
        self.fpn_conv = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.fpn_norm = nn.BatchNorm2d(out_channels)
        self.dilated_encoder_blocks = nn.Sequential(
            *(DilatedBottleneck(out_channels, block_mid_channels, d) for d in block_dilations)
        )

    def init_weights(self) -> None:
        """v2's init (see the class docstring)."""
        caffe2_xavier_init(self.lateral_conv)
        caffe2_xavier_init(self.fpn_conv)
        for norm in (self.lateral_norm, self.fpn_norm):
            constant_init(norm, 1)
        for m in self.dilated_encoder_blocks.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, mean=0, std=0.01)
            if isinstance(m, _NORMS):
                constant_init(m, 1)

    def forward(self, feature: Sequence[torch.Tensor]) -> tuple[torch.Tensor]:
        """Backbone maps (the last one is used) -> ``(Tensor[B, out_channels, H, W],)``."""
        out = self.fpn_norm(self.fpn_conv(self.lateral_norm(self.lateral_conv(feature[-1]))))
        return (self.dilated_encoder_blocks(out),)
