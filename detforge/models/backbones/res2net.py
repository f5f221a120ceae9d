"""``Res2Net``: ResNet-D whose 3x3 convs work on hierarchical channel splits (MMDetection v2).

A ``Bottle2neck`` splits the 1x1-reduced features into ``scales`` groups of ``width`` channels.
Group 0 goes through a 3x3 conv; group ``i`` (1 <= i < scales - 1) through its own 3x3 conv
after adding the previous group's output (in the first block of a stage, the ``'stage'``
block, each group is convolved on its own); the last group passes unchanged (average-pooled
when the ``'stage'`` block strides). Gao et al., "Res2Net: A New Multi-scale Backbone
Architecture", TPAMI 2019.

Keys are v2's: ``stem.*`` (deep stem), ``layer{i}.{j}.conv1``/``bn1``, ``convs.{k}``/``bns.{k}``
(``k < scales - 1``), ``conv3``/``bn3``, ``downsample.1``/``.2`` (the shortcut always starts
with an average pooling, also in ``layer1``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.models.backbones.resnet import ResNet
from detforge.models.layers import apply_init_cfg, build_conv_layer, build_norm_layer
from detforge.models.layers.res_layer import _conv2_cfg, _conv_strides, _no_plugins, _run_block
from detforge.registry import MODELS, Cfg

__all__ = ["Bottle2neck", "Res2Net"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class Bottle2neck(nn.Module):
    """Res2Net's bottleneck: 1x1 conv → ``scales - 1`` chained 3x3 convs on splits → 1x1 conv.

    Args:
        inplanes: Input channels.
        planes: Base channels; the output has ``planes * 4``.
        stride: Stride of the block (on the 3x3 convs with ``style='pytorch'``).
        dilation: Dilation (and padding) of the 3x3 convs.
        downsample: Shortcut module, or ``None`` for identity.
        style: ``'pytorch'`` or ``'caffe'`` (stride on the first 1x1 conv).
        with_cp: Checkpoint the residual branch to save memory when training.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        dcn: Deformable conv config for the 3x3 convs (``fallback_on_stride=True`` keeps
            plain convs).
        plugins: Must be ``None``.
        scales: Number of channel splits (> 1).
        base_width: Width of one split at ``base_channels``.
        base_channels: The backbone's base channels: a split has
            ``floor(planes * base_width / base_channels)`` channels.
        stage_type: ``'stage'`` for a stage's first block (splits convolved independently, the
            last one pooled when striding), ``'normal'`` otherwise.
        init_cfg: This block's ``init_cfg`` (Res2Net passes the zero-init of ``norm3``).

    Example:
        >>> block = Bottle2neck(16, 4, scales=4, base_width=26)
        >>> [k.rsplit('.', 1)[0] for k in block.state_dict() if k.endswith('weight')]
        ['conv1', 'bn1', 'conv3', 'bn3', 'convs.0', 'convs.1', 'convs.2', 'bns.0', 'bns.1', 'bns.2']
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = "pytorch",
        with_cp: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = {"type": "BN"},  # noqa: B006 (never mutated)
        dcn: Cfg | None = None,
        plugins: Any = None,
        scales: int = 4,
        base_width: int = 26,
        base_channels: int = 64,
        stage_type: str = "normal",
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if scales <= 1:
            raise ValueError(f"Bottle2neck: scales must be > 1 (1 is a ResNet), got {scales}")
        if stage_type not in ("normal", "stage"):
            raise ValueError(
                f"Bottle2neck: stage_type must be 'normal' or 'stage', got {stage_type!r}"
            )
        _no_plugins(plugins, "Bottle2neck")
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.scales = scales
        self.stage_type = stage_type
        self.init_cfg = init_cfg
        self.conv1_stride, self.conv2_stride = _conv_strides("Bottle2neck", style, stride)
        self.width = width = math.floor(planes * (base_width / base_channels))

        conv2_cfg = _conv2_cfg("Bottle2neck", conv_cfg, dcn)
        self.with_dcn = dcn is not None

        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, width * scales, 1, stride=self.conv1_stride, bias=False
        )
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width * scales, postfix=1)
        self.add_module(self.norm1_name, norm1)
        # v2's module order (state_dict and parameter order): convs and bns come last
        self.conv3 = build_conv_layer(
            conv_cfg, width * scales, planes * self.expansion, 1, bias=False
        )
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        if stage_type == "stage" and self.conv2_stride != 1:
            self.pool = nn.AvgPool2d(kernel_size=3, stride=self.conv2_stride, padding=1)
        self.convs = nn.ModuleList(
            build_conv_layer(
                conv2_cfg,
                width,
                width,
                3,
                stride=self.conv2_stride,
                padding=dilation,
                dilation=dilation,
                bias=False,
            )
            for _ in range(scales - 1)
        )
        self.bns = nn.ModuleList(
            build_norm_layer(norm_cfg, width, postfix=i + 1)[1] for i in range(scales - 1)
        )

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        splits = torch.split(self.relu(self.norm1(self.conv1(x))), self.width, 1)
        outs = []
        sp = splits[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if i > 0:
                sp = splits[i] if self.stage_type == "stage" else sp + splits[i]
            sp = self.relu(bn(conv(sp.contiguous())))
            outs.append(sp)
        last = splits[-1]
        if self.stage_type == "stage" and self.conv2_stride != 1:
            last = self.pool(last)
        out = self.norm3(self.conv3(torch.cat([*outs, last], 1)))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_block(self, x)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)


@MODELS.register_module()
class Res2Net(ResNet):
    """Res2Net backbone (MMDetection v2 ``Res2Net``): a deep-stem, average-down ResNet of
    :class:`Bottle2neck` blocks.

    As in v2, ``style``, ``deep_stem`` and ``avg_down`` are always ``'pytorch'``, ``True`` and
    ``True``; other values are ignored with a warning.

    Args:
        scales: Channel splits per block.
        base_width: Width of one split in the first stage (at ``base_channels``).
        style: Ignored unless ``'pytorch'`` (warning).
        deep_stem: Ignored unless True (warning).
        avg_down: Ignored unless True (warning).
        **kwargs: The other arguments of :class:`~detforge.models.backbones.ResNet`
            (``depth`` 50, 101 or 152, ``out_indices``, ``frozen_stages``, ``norm_cfg``, ...).

    Example:
        >>> net = Res2Net(depth=50, base_channels=8, scales=4, base_width=4).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2), (1, 256, 1, 1)]
    """

    # each stage's first block is the 'stage' block
    first_block_args: ClassVar[Mapping[str, Any]] = MappingProxyType({"stage_type": "stage"})
    arch_settings: ClassVar[dict[int, tuple[type[nn.Module], tuple[int, ...]]]] = {
        50: (Bottle2neck, (3, 4, 6, 3)),
        101: (Bottle2neck, (3, 4, 23, 3)),
        152: (Bottle2neck, (3, 8, 36, 3)),
    }

    def __init__(
        self,
        scales: int = 4,
        base_width: int = 26,
        style: str = "pytorch",
        deep_stem: bool = True,
        avg_down: bool = True,
        **kwargs: Any,
    ) -> None:
        for key, value, forced in (
            ("style", style, "pytorch"),
            ("deep_stem", deep_stem, True),
            ("avg_down", avg_down, True),
        ):
            if value != forced:
                warnings.warn(
                    f"Res2Net: {key}={value!r} is ignored; Res2Net always uses {key}={forced!r}",
                    stacklevel=2,
                )
        # read by _block_args() while ResNet.__init__ builds the stages
        self.scales = scales
        self.base_width = base_width
        super().__init__(style="pytorch", deep_stem=True, avg_down=True, **kwargs)

    def _block_args(self, stage: int) -> dict[str, Any]:
        return {
            "scales": self.scales,
            "base_width": self.base_width,
            "base_channels": self.base_channels,
        }
