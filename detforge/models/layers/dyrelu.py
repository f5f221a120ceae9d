"""``DyReLU``: dynamic ReLU, the task-aware attention of DyHead (MMDetection v2's se_layer.py).

Keys are v2's: ``conv1.conv.*`` and ``conv2.conv.*`` (two 1x1 :class:`ConvModule`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import torch
from torch import nn

from detforge.errors import ConfigTypeError
from detforge.models.layers.conv_module import ConvModule
from detforge.registry import Cfg

__all__ = ["DyReLU"]

_DYRELU_ACTS = (
    MappingProxyType({"type": "ReLU"}),
    MappingProxyType({"type": "HSigmoid", "bias": 3.0, "divisor": 6.0}),
)


class DyReLU(nn.Module):
    """``max(a1 * x + b1, a2 * x + b2)`` with per-channel coefficients from the pooled input.

    The squeeze-excitation branch (global average pool, ``conv1``, ``conv2``) yields four
    coefficients per channel in ``[-0.5, 0.5]`` (after ``HSigmoid - 0.5``); ``a1 = 2 * c + 1``,
    ``a2 = 2 * c``, ``b1``/``b2`` as they are (DyHead's official code).

    Args:
        channels: Input (and output) channels.
        ratio: Squeeze ratio; the hidden conv has ``int(channels / ratio)`` channels.
        conv_cfg: Conv layer config of both convs.
        act_cfg: Activation of ``conv1`` and ``conv2`` (one dict is used for both).

    Example:
        >>> DyReLU(8)(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        channels: int,
        ratio: int = 4,
        conv_cfg: Cfg | None = None,
        act_cfg: Cfg | Sequence[Cfg] = _DYRELU_ACTS,
    ) -> None:
        super().__init__()
        acts = (act_cfg, act_cfg) if isinstance(act_cfg, Mapping) else tuple(act_cfg)
        if len(acts) != 2 or not all(isinstance(a, Mapping) for a in acts):
            raise ConfigTypeError(f"DyReLU: act_cfg must be a dict or two dicts, got {act_cfg!r}")
        self.channels = channels
        self.expansion = 4  # a1, b1, a2, b2
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = int(channels / ratio)
        self.conv1 = ConvModule(channels, hidden, 1, conv_cfg=conv_cfg, act_cfg=acts[0])
        self.conv2 = ConvModule(
            hidden, channels * self.expansion, 1, conv_cfg=conv_cfg, act_cfg=acts[1]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coeffs = self.conv2(self.conv1(self.global_avgpool(x))) - 0.5
        a1, b1, a2, b2 = torch.split(coeffs, self.channels, dim=1)
        return torch.max(x * (a1 * 2.0 + 1.0) + b1, x * (a2 * 2.0) + b2)
