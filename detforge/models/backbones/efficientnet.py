"""``EfficientNet`` (B0-B8 and EdgeTPU S/M/L) with MMDetection v2's layout and scaling rules.

Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019. The base network is a
table of blocks (kernel, out channels, SE ratio, stride, expand ratio, block type) grouped
into 7 layers; an arch scales every width by ``width_mult`` (rounded by
:func:`~detforge.models.layers.make_divisible` to 8) and every run of equal-width blocks by
``ceil(depth_mult * n)`` blocks, as :func:`scale_layers` describes.

Keys are v2's: ``layers.0.conv``/``.bn`` (stem), ``layers.{i}.{j}.expand_conv``/
``depthwise_conv``/``se.conv1``/``se.conv2``/``linear_conv`` (MBConv) or ``conv1``/``conv2``
(EdgeTPU's fused blocks), and ``layers.{last}`` for the 1x1 head conv when an output needs it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.layers import (
    ConvModule,
    InvertedResidual,
    SELayer,
    apply_init_cfg,
    batch_norms_to_eval,
    make_divisible,
)
from detforge.models.layers.inverted_residual import drop_path_layer, residual_forward
from detforge.registry import MODELS, Cfg

__all__ = ["EdgeResidual", "EfficientNet", "scale_layers"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_BlockCfg = list[Any]  # [kernel, out_channels, se_ratio, stride, expand_ratio, block_type]
_DEFAULT_INIT: tuple[Cfg, ...] = (
    MappingProxyType({"type": "Kaiming", "layer": "Conv2d"}),
    MappingProxyType({"type": "Constant", "layer": ["_BatchNorm", "GroupNorm"], "val": 1}),
)
_RELU: Cfg = MappingProxyType({"type": "ReLU"})
_BN: Cfg = MappingProxyType({"type": "BN"})


class EdgeResidual(nn.Module):
    """EdgeTPU's fused MBConv: kxk conv (expansion) → (SE) → 1x1 conv carrying the stride.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Channels after the first conv.
        kernel_size: Kernel size of the first conv.
        stride: Stride of the second (1x1) conv, 1 or 2.
        se_cfg: :class:`~detforge.models.layers.SELayer` arguments, or ``None``.
        with_residual: Add the input when stride is 1 and channels are unchanged.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config (not after the second conv).
        drop_path_rate: Stochastic depth rate of the residual branch.
        with_cp: Gradient checkpointing.
        with_expand_conv: Ignored (EfficientNet passes it to every block type, as in v2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        se_cfg: Mapping[str, Any] | None = None,
        with_residual: bool = True,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _RELU,
        drop_path_rate: float = 0.0,
        with_cp: bool = False,
        with_expand_conv: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"EdgeResidual: stride must be 1 or 2, got {stride}")
        self.with_cp = with_cp
        self.drop_path = drop_path_layer(drop_path_rate)
        self.with_se = se_cfg is not None
        self.with_residual = stride == 1 and in_channels == out_channels and with_residual
        common: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg}
        self.conv1 = ConvModule(
            in_channels,
            mid_channels,
            kernel_size,
            padding=kernel_size // 2,
            act_cfg=act_cfg,
            **common,
        )
        if se_cfg is not None:
            self.se = SELayer(**se_cfg)
        self.conv2 = ConvModule(
            mid_channels, out_channels, 1, stride=stride, act_cfg=None, **common
        )

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.with_se:
            out = self.se(out)
        result: torch.Tensor = self.conv2(out)
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.with_residual
        return residual_forward(self._branch, x, residual, self.drop_path, self.with_cp)


def scale_layers(
    layers: Sequence[Sequence[_BlockCfg]], width_mult: float, depth_mult: float
) -> list[list[_BlockCfg]]:
    """Scale EfficientNet's block table as v2's ``model_scaling`` does.

    Every block's out channels become ``make_divisible(c * width_mult, 8)``. The middle
    layers are cut into runs of equal out channels; a run of ``n`` blocks becomes
    ``ceil(depth_mult * n)`` blocks (the last block repeated, or the run truncated). A run
    whose first block has stride 1 joins the layer before it (except the first run); the
    first (stem) and last (head conv) layers are kept as they are.

    Example:
        >>> table = EfficientNet.layer_settings['b']
        >>> [len(layer) for layer in scale_layers(table, 1.2, 1.4)]
        [1, 2, 3, 3, 10, 8, 1]
    """
    scaled = copy.deepcopy([[list(b) for b in layer] for layer in layers])
    for layer in scaled:
        for block in layer:
            block[1] = make_divisible(block[1] * width_mult, 8)
    runs: list[list[_BlockCfg]] = []
    for layer in scaled[1:-1]:
        starts = [j for j in range(len(layer)) if j == 0 or layer[j][1] != layer[j - 1][1]]
        runs += [layer[a:b] for a, b in zip(starts, [*starts[1:], len(layer)], strict=True)]
    merged = [scaled[0]]
    for i, run in enumerate(runs):
        n = math.ceil(depth_mult * len(run))
        blocks = run[:n] if n <= len(run) else copy.deepcopy(run) + [run[-1]] * (n - len(run))
        if blocks[0][3] == 1 and i != 0:
            merged[-1] = merged[-1] + blocks
        else:
            merged.append(blocks)
    merged.append(scaled[-1])
    return merged


@MODELS.register_module()
class EfficientNet(nn.Module):
    """EfficientNet backbone (MMDetection v2 ``EfficientNet``).

    ``layers[0]`` is the stride-2 stem conv, ``layers[1]`` ... ``layers[5]`` the block layers
    (strides 2, 4, 8, 16, 32 after them for ``'b*'``), ``layers[6]`` the 1x1 head conv. Only
    the layers up to ``max(out_indices)`` are built.

    Args:
        arch: ``'b0'`` ... ``'b8'``, ``'es'``, ``'em'`` or ``'el'``.
        drop_path_rate: Stochastic depth rate of the last block (linear from 0 over blocks).
        out_indices: Layers whose outputs are returned (0-6).
        frozen_stages: Number of leading layers to freeze (0-7).
        conv_cfg: Conv layer config (TensorFlow-style ``'SAME'`` padding by default).
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        norm_eval: Keep batch-norm layers in eval mode during training.
        with_cp: Gradient checkpointing in the blocks.
        init_cfg: Initialisation config; ``None`` means the default, Kaiming for convs and 1
            for norm weights.

    Example:
        >>> import torch
        >>> net = EfficientNet(arch='b0', out_indices=(2, 3)).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 24, 16, 16), (1, 40, 8, 8)]
    """

    # [kernel, out_channels, se_ratio, stride, expand_ratio, block_type]; block_type -1: a
    # plain ConvModule (stem / head conv), 0: InvertedResidual, 1: EdgeResidual
    layer_settings: ClassVar[Mapping[str, list[list[_BlockCfg]]]] = MappingProxyType(
        {
            "b": [
                [[3, 32, 0, 2, 0, -1]],
                [[3, 16, 4, 1, 1, 0]],
                [[3, 24, 4, 2, 6, 0], [3, 24, 4, 1, 6, 0]],
                [[5, 40, 4, 2, 6, 0], [5, 40, 4, 1, 6, 0]],
                [[3, 80, 4, 2, 6, 0], [3, 80, 4, 1, 6, 0], [3, 80, 4, 1, 6, 0]]
                + [[5, 112, 4, 1, 6, 0]] * 3,
                [[5, 192, 4, 2, 6, 0]] + [[5, 192, 4, 1, 6, 0]] * 3 + [[3, 320, 4, 1, 6, 0]],
                [[1, 1280, 0, 1, 0, -1]],
            ],
            "e": [
                [[3, 32, 0, 2, 0, -1]],
                [[3, 24, 0, 1, 3, 1]],
                [[3, 32, 0, 2, 8, 1], [3, 32, 0, 1, 8, 1]],
                [[3, 48, 0, 2, 8, 1]] + [[3, 48, 0, 1, 8, 1]] * 3,
                [[5, 96, 0, 2, 8, 0]] + [[5, 96, 0, 1, 8, 0]] * 4 + [[5, 144, 0, 1, 8, 0]] * 4,
                [[5, 192, 0, 2, 8, 0], [5, 192, 0, 1, 8, 0]],
                [[1, 1280, 0, 1, 0, -1]],
            ],
        }
    )
    # (width multiplier, depth multiplier, input resolution)
    arch_settings: ClassVar[Mapping[str, tuple[float, float, int]]] = MappingProxyType(
        {
            "b0": (1.0, 1.0, 224),
            "b1": (1.0, 1.1, 240),
            "b2": (1.1, 1.2, 260),
            "b3": (1.2, 1.4, 300),
            "b4": (1.4, 1.8, 380),
            "b5": (1.6, 2.2, 456),
            "b6": (1.8, 2.6, 528),
            "b7": (2.0, 3.1, 600),
            "b8": (2.2, 3.6, 672),
            "es": (1.0, 1.0, 224),
            "em": (1.0, 1.1, 240),
            "el": (1.2, 1.4, 300),
        }
    )

    def __init__(
        self,
        arch: str = "b0",
        drop_path_rate: float = 0.0,
        out_indices: Sequence[int] = (6,),
        frozen_stages: int = 0,
        conv_cfg: Cfg | None = MappingProxyType({"type": "Conv2dAdaptivePadding"}),
        norm_cfg: Cfg = MappingProxyType({"type": "BN", "eps": 1e-3}),
        act_cfg: Cfg = MappingProxyType({"type": "Swish"}),
        norm_eval: bool = False,
        with_cp: bool = False,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if arch not in self.arch_settings:
            raise ConfigKeyError(
                f"EfficientNet: unknown arch {arch!r}; choose from {list(self.arch_settings)}"
            )
        base = self.layer_settings[arch[:1]]
        out_indices = tuple(out_indices)
        if not out_indices or not all(0 <= i < len(base) for i in out_indices):
            raise ValueError(
                f"EfficientNet: out_indices {out_indices} must lie in 0..{len(base) - 1}"
            )
        if not 0 <= frozen_stages <= len(base):
            raise ValueError(
                f"EfficientNet: frozen_stages must be in 0..{len(base)}, got {frozen_stages}"
            )
        self.arch_setting = self.arch_settings[arch]
        self.drop_path_rate = drop_path_rate
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.init_cfg = _DEFAULT_INIT if init_cfg is None else init_cfg
        self.layer_setting = scale_layers(base, self.arch_setting[0], self.arch_setting[1])

        stem, head = self.layer_setting[0][0], self.layer_setting[-1][0]
        self.in_channels = make_divisible(stem[1], 8)
        self.out_channels = head[1]
        common: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        stem_conv = ConvModule(
            3, self.in_channels, stem[0], stride=stem[3], padding=stem[0] // 2, **common
        )
        self.layers = nn.ModuleList([stem_conv])
        self._make_layers()
        if len(self.layers) < max(out_indices) + 1:  # the head conv only when an output needs it
            self.layers.append(
                ConvModule(
                    self.in_channels,
                    self.out_channels,
                    head[0],
                    stride=head[3],
                    padding=head[0] // 2,
                    **common,
                )
            )
        self._freeze_stages()

    def _make_layers(self) -> None:
        """Append the block layers ``layers[1]`` ... up to the last one an output needs."""
        middle = self.layer_setting[1:-1]
        total = sum(len(layer) for layer in middle)
        # float32 steps, as v2 (explicit device: the model may be built on "meta")
        rates = torch.linspace(0, self.drop_path_rate, total, device="cpu").tolist()
        block_idx = 0
        for layer_cfg in middle[: max(self.out_indices)]:
            blocks = []
            for j, (kernel, out_channels, se_ratio, stride, expand, block_type) in enumerate(
                layer_cfg
            ):
                out_channels = make_divisible(out_channels, 8)
                extra: dict[str, Any] = {}
                if block_type == 1:  # EdgeTPU: a repeated 3x-expansion block expands 4x, no skip
                    repeated = j > 0 and expand == 3
                    expand = 4 if repeated else expand
                    extra["with_residual"] = not repeated
                mid_channels = int(self.in_channels * expand)
                se_cfg = None
                if se_ratio > 0:
                    # the SE width is int(mid / (expand * se_ratio)), as v2 (no divisor)
                    se_cfg = {
                        "channels": mid_channels,
                        "ratio": expand * se_ratio,
                        "act_cfg": (self.act_cfg, {"type": "Sigmoid"}),
                    }
                block_cls = EdgeResidual if block_type == 1 else InvertedResidual
                blocks.append(
                    block_cls(
                        in_channels=self.in_channels,
                        out_channels=out_channels,
                        mid_channels=mid_channels,
                        kernel_size=kernel,
                        stride=stride,
                        se_cfg=se_cfg,
                        conv_cfg=self.conv_cfg,
                        norm_cfg=self.norm_cfg,
                        act_cfg=self.act_cfg,
                        drop_path_rate=rates[block_idx],
                        with_cp=self.with_cp,
                        with_expand_conv=mid_channels != self.in_channels,
                        **extra,
                    )
                )
                self.in_channels = out_channels
                block_idx += 1
            self.layers.append(nn.Sequential(*blocks))

    def _freeze_stages(self) -> None:
        for layer in self.layers[: self.frozen_stages]:
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, 3, H, W]`` -> the outputs of ``layers[i]`` for ``i`` in ``out_indices``."""
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> EfficientNet:
        """Set training mode, keeping frozen layers (and BN with ``norm_eval``) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self
