"""``ChannelMapper``: bring backbone levels to one channel count (MMDetection v2 neck)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

import torch
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.necks.fpn import check_in_channels
from detforge.registry import MODELS, Cfg

__all__ = ["ChannelMapper"]

_RELU: Cfg = MappingProxyType(dict(type="ReLU"))
_XAVIER: Cfg = MappingProxyType(dict(type="Xavier", layer="Conv2d", distribution="uniform"))


@MODELS.register_module()
class ChannelMapper(nn.Module):
    """One ``ConvModule`` per level (``convs.i``) maps it to ``out_channels``; with
    ``num_outs`` above the number of levels, stride-2 3x3 ``ConvModule`` s (``extra_convs.j``)
    add levels, the first on the last *input*, the others on the previous output.

    Args:
        in_channels: Channels of each input level.
        out_channels: Channels of every output.
        kernel_size: Kernel of the per-level convs (padding ``(k - 1) // 2``).
        conv_cfg: Conv config of all convs.
        norm_cfg: Norm config of all convs.
        act_cfg: Activation of all convs (default ReLU).
        num_outs: Number of outputs (default: one per input level).
        init_cfg: Default Xavier-uniform for every ``Conv2d``.

    Example:
        >>> mapper = ChannelMapper([2, 3], 4, num_outs=3)
        >>> outs = mapper([torch.rand(1, 2, 8, 8), torch.rand(1, 3, 4, 4)])
        >>> [tuple(o.shape) for o in outs]
        [(1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        kernel_size: int = 3,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = _RELU,
        num_outs: int | None = None,
        init_cfg: Cfg | Sequence[Cfg] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_in_channels(in_channels, "ChannelMapper")
        self.out_channels = out_channels
        self.num_outs = len(self.in_channels) if num_outs is None else num_outs
        if self.num_outs < len(self.in_channels):
            raise ValueError(
                f"ChannelMapper: num_outs={self.num_outs} is less than the "
                f"{len(self.in_channels)} input levels"
            )
        self.init_cfg = _XAVIER if init_cfg is None else init_cfg

        def conv(cin: int, kernel: int, stride: int = 1) -> ConvModule:
            return ConvModule(
                cin,
                out_channels,
                kernel,
                stride=stride,
                padding=(kernel - 1) // 2,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
            )

        self.convs = nn.ModuleList(conv(c, kernel_size) for c in self.in_channels)
        self.extra_convs: nn.ModuleList | None = None
        if self.num_outs > len(self.in_channels):
            self.extra_convs = nn.ModuleList(
                conv(self.in_channels[-1] if j == 0 else out_channels, 3, stride=2)
                for j in range(self.num_outs - len(self.in_channels))
            )

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` -> ``num_outs`` maps of ``out_channels``."""
        if len(inputs) != len(self.convs):
            raise ValueError(
                f"ChannelMapper: got {len(inputs)} input levels, in_channels has {len(self.convs)}"
            )
        outs = [conv(x) for conv, x in zip(self.convs, inputs, strict=True)]
        if self.extra_convs is not None:
            source = inputs[-1]
            for extra in self.extra_convs:
                outs.append(extra(source))
                source = outs[-1]
        return tuple(outs)
