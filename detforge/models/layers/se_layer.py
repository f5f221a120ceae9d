"""``SELayer``: squeeze-and-excitation channel attention (MMDetection v2 layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers.conv_module import ConvModule
from detforge.registry import Cfg

__all__ = ["SELayer"]

_RELU_SIGMOID: tuple[Cfg, Cfg] = (
    MappingProxyType({"type": "ReLU"}),
    MappingProxyType({"type": "Sigmoid"}),
)


class SELayer(nn.Module):
    """``x * act2(conv2(act1(conv1(global_avg_pool(x)))))`` (Hu et al., 2018).

    Keys: ``conv1.conv``, ``conv2.conv`` (1x1 convs with bias, no norm).

    Args:
        channels: Input (and output) channels.
        ratio: The squeezed width is ``int(channels / ratio)`` (a float ratio is allowed).
        conv_cfg: Conv layer config of both convs.
        act_cfg: Activation config of both convs, or one per conv (default ReLU, Sigmoid).

    Example:
        >>> se = SELayer(8, ratio=4)
        >>> tuple(se.conv1.conv.weight.shape), se(torch.rand(1, 8, 3, 3)).shape
        ((2, 8, 1, 1), torch.Size([1, 8, 3, 3]))
    """

    def __init__(
        self,
        channels: int,
        ratio: float = 16,
        conv_cfg: Cfg | None = None,
        act_cfg: Cfg | Sequence[Cfg] = _RELU_SIGMOID,
    ) -> None:
        super().__init__()
        acts: Sequence[Any] = (act_cfg, act_cfg) if isinstance(act_cfg, Mapping) else act_cfg
        if len(acts) != 2 or not all(isinstance(a, Mapping) for a in acts):
            raise ValueError(f"SELayer: act_cfg must be a dict or two dicts, got {act_cfg!r}")
        squeezed = int(channels / ratio)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = ConvModule(channels, squeezed, 1, conv_cfg=conv_cfg, act_cfg=acts[0])
        self.conv2 = ConvModule(squeezed, channels, 1, conv_cfg=conv_cfg, act_cfg=acts[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = x * self.conv2(self.conv1(self.global_avgpool(x)))
        return result
