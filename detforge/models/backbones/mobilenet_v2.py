"""``MobileNetV2`` backbone with MMDetection v2's layout, defaults and freezing rules.

State-dict keys: ``conv1`` (stem ConvModule), ``layer{1..7}.{j}.expand_conv`` /
``depthwise_conv`` / ``linear_conv`` (each ``.conv`` + ``.bn``), ``conv2`` (the last 1x1 conv).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.backbones._common import InitCfg, StagedBackbone, backbone_init_cfg, freeze
from detforge.models.layers import ConvModule
from detforge.models.layers.inverted_residual import InvertedResidual, make_divisible
from detforge.registry import MODELS, Cfg

__all__ = ["MobileNetV2"]

_BN: Cfg = MappingProxyType({"type": "BN"})
_RELU6: Cfg = MappingProxyType({"type": "ReLU6"})
_DEFAULT_INIT: tuple[Cfg, ...] = (
    MappingProxyType({"type": "Kaiming", "layer": "Conv2d"}),
    MappingProxyType({"type": "Constant", "val": 1, "layer": ["_BatchNorm", "GroupNorm"]}),
)


@MODELS.register_module()
class MobileNetV2(StagedBackbone):
    """MobileNetV2 (MMDetection v2 ``MobileNetV2``).

    A stride-2 3x3 stem (``conv1``), seven stages of inverted residual blocks (``layer1`` …
    ``layer7``; expand ratio, channels, blocks, stride: (1, 16, 1, 1), (6, 24, 2, 2),
    (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)) and a 1x1 conv
    to 1280 channels (``conv2``; ``int(1280 * widen_factor)`` when ``widen_factor > 1``).
    Output index ``i`` is ``layer{i+1}`` (``7`` is ``conv2``); strides 2, 4, 8, 16, 16, 32, 32,
    32.

    Args:
        widen_factor: Width multiplier; channels are rounded with ``make_divisible(c, 8)``.
        out_indices: Outputs returned, a subset of 0..7.
        frozen_stages: Stages to freeze (-1 = none). As in v2, ``>= 0`` stops the gradients of
            ``conv1`` (which stays in training mode), and ``layer1`` … ``layer{frozen_stages}``
            are frozen and kept in eval mode.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config (ReLU6).
        norm_eval: Keep batch-norm layers in eval mode during training.
        with_cp: Gradient checkpointing of the blocks.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: Initialisation config used by :meth:`init_weights` (default Kaiming for
            convs, 1 for norm weights).

    Example:
        >>> net = MobileNetV2(widen_factor=0.25, out_indices=(2, 4, 6)).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 8, 8, 8), (1, 24, 4, 4), (1, 80, 2, 2)]
    """

    arch_settings: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(
        self,
        widen_factor: float = 1.0,
        out_indices: Sequence[int] = (1, 2, 4, 7),
        frozen_stages: int = -1,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _RELU6,
        norm_eval: bool = False,
        with_cp: bool = False,
        pretrained: str | None = None,
        init_cfg: InitCfg = None,
    ) -> None:
        super().__init__()
        if not set(out_indices) <= set(range(8)):
            raise ValueError(
                f"MobileNetV2: out_indices must be a subset of 0..7, got {out_indices}"
            )
        if frozen_stages not in range(-1, 8):
            raise ValueError(f"MobileNetV2: frozen_stages must be in -1..7, got {frozen_stages}")
        self.init_cfg = backbone_init_cfg("MobileNetV2", pretrained, init_cfg, list(_DEFAULT_INIT))
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}

        channels = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, channels, 3, stride=2, padding=1, **layers)
        self.layers: list[str] = []
        for i, (expand_ratio, base, num_blocks, stride) in enumerate(self.arch_settings):
            out_channels = make_divisible(base * widen_factor, 8)
            blocks = []
            for j in range(num_blocks):
                blocks.append(
                    InvertedResidual(
                        channels,
                        out_channels,
                        mid_channels=round(channels * expand_ratio),
                        stride=stride if j == 0 else 1,
                        with_expand_conv=expand_ratio != 1,
                        with_cp=with_cp,
                        **layers,
                    )
                )
                channels = out_channels
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.layers.append(f"layer{i + 1}")
        self.out_channel = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(channels, self.out_channel, 1, **layers)
        self.layers.append("conv2")
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for param in self.conv1.parameters():
                param.requires_grad = False
        freeze(getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, 3, H, W]`` -> one feature map per ``out_indices`` entry."""
        return self.run_stages(self.conv1(x), self.layers)
