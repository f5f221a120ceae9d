"""``ResNeSt``: ResNet-D whose 3x3 convs are split-attention convs (MMDetection v2 layout).

Zhang et al., "ResNeSt: Split-Attention Networks", 2020. A :class:`SplitAttentionConv2d`
computes ``radix`` grouped conv outputs, pools their sum into a per-channel descriptor, and
mixes the ``radix`` outputs with softmax weights over the radix (sigmoid when ``radix == 1``).
With ``avg_down_stride`` a strided block convolves at full resolution and then average-pools.

Keys are v2's: ResNetV1d's stem and shortcuts, ``layer{i}.{j}.conv1``/``bn1``,
``conv2.conv``/``conv2.bn0``/``conv2.fc1``/``conv2.bn1``/``conv2.fc2``, ``conv3``/``bn3``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.backbones.resnet import ResNetV1d
from detforge.models.layers import apply_init_cfg, build_conv_layer, build_norm_layer
from detforge.models.layers.res_layer import (
    _conv2_cfg,
    _conv_strides,
    _grouped_width,
    _no_plugins,
    _run_block,
)
from detforge.registry import MODELS, Cfg

__all__ = ["ResNeSt", "ResNeStBottleneck", "SplitAttentionConv2d"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class SplitAttentionConv2d(nn.Module):
    """Split-attention conv: ``radix`` grouped convs mixed by attention over the radix.

    Args:
        in_channels: Input channels.
        channels: Output channels.
        kernel_size: Kernel size of the grouped conv.
        stride: Stride of the grouped conv.
        padding: Padding of the grouped conv.
        dilation: Dilation of the grouped conv.
        groups: Cardinality (the conv has ``groups * radix`` groups).
        radix: Number of splits attended over.
        reduction_factor: The attention's hidden width is
            ``max(in_channels * radix // reduction_factor, 32)``.
        conv_cfg: Conv layer config of the grouped conv.
        norm_cfg: Norm layer config.
        dcn: Deformable conv config for the grouped conv (``fallback_on_stride=True`` keeps
            a plain conv).

    Example:
        >>> m = SplitAttentionConv2d(8, 8, 3, padding=1, radix=2).eval()
        >>> m(torch.rand(2, 8, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        radix: int = 2,
        reduction_factor: int = 4,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = {"type": "BN"},  # noqa: B006 (never mutated)
        dcn: Cfg | None = None,
    ) -> None:
        super().__init__()
        if radix < 1:
            raise ValueError(f"SplitAttentionConv2d: radix must be >= 1, got {radix}")
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix = radix
        self.groups = groups
        self.channels = channels
        self.with_dcn = dcn is not None
        self.conv = build_conv_layer(
            _conv2_cfg("SplitAttentionConv2d", conv_cfg, dcn),
            in_channels,
            channels * radix,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups * radix,
            bias=False,
        )
        self.norm0_name, norm0 = build_norm_layer(norm_cfg, channels * radix, postfix=0)
        self.add_module(self.norm0_name, norm0)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = build_conv_layer(None, channels, inter_channels, 1, groups=groups)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, inter_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = build_conv_layer(None, inter_channels, channels * radix, 1, groups=groups)

    @property
    def norm0(self) -> nn.Module:
        return getattr(self, self.norm0_name)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, channels, H', W']``."""
        x = self.relu(self.norm0(self.conv(x)))
        batch = x.size(0)
        if self.radix > 1:
            splits = x.view(batch, self.radix, -1, *x.shape[2:])
            gap = splits.sum(dim=1)
        else:
            gap = x
        gap = self.relu(self.norm1(self.fc1(F.adaptive_avg_pool2d(gap, 1))))
        atten = self.fc2(gap)
        if self.radix > 1:
            # softmax over the radix within each cardinal group: (B, groups, radix, rest)
            atten = atten.view(batch, self.groups, self.radix, -1).transpose(1, 2)
            atten = F.softmax(atten, dim=1).reshape(batch, -1)
            attens = atten.view(batch, self.radix, -1, 1, 1)
            out = torch.sum(attens * splits, dim=1)
        else:
            out = torch.sigmoid(atten).view(batch, -1, 1, 1) * x
        return out.contiguous()


class ResNeStBottleneck(nn.Module):
    """ResNeSt's bottleneck: 1x1 conv → split-attention 3x3 conv (→ avg pool) → 1x1 conv.

    Args:
        inplanes: Input channels.
        planes: Base channels; the output has ``planes * 4``.
        stride: Stride of the block.
        dilation: Dilation (and padding) of the 3x3 conv.
        downsample: Shortcut module, or ``None`` for identity.
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on the first 1x1).
        with_cp: Checkpoint the residual branch to save memory when training.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        dcn: Deformable conv config for the 3x3 conv.
        plugins: Must be ``None``.
        groups: Cardinality of the 3x3 conv.
        base_width: Width of one group at ``base_channels`` (used when ``groups > 1``).
        base_channels: The backbone's base channels.
        radix: Radix of the split-attention conv.
        reduction_factor: Reduction factor of the attention's hidden width.
        avg_down_stride: A strided 3x3 conv runs at stride 1 and a 3x3 average pooling
            (``avd_layer``) strides instead.
        init_cfg: This block's ``init_cfg`` (ResNeSt passes the zero-init of ``norm3``).
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
        groups: int = 1,
        base_width: int = 4,
        base_channels: int = 64,
        radix: int = 2,
        reduction_factor: int = 4,
        avg_down_stride: bool = True,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        _no_plugins(plugins, "ResNeStBottleneck")
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.with_dcn = dcn is not None
        self.init_cfg = init_cfg
        self.conv1_stride, self.conv2_stride = _conv_strides("ResNeStBottleneck", style, stride)
        self.avg_down_stride = avg_down_stride and self.conv2_stride > 1
        width = _grouped_width(planes, groups, base_width, base_channels)

        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, width, 1, stride=self.conv1_stride, bias=False
        )
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = SplitAttentionConv2d(
            width,
            width,
            kernel_size=3,
            stride=1 if self.avg_down_stride else self.conv2_stride,
            padding=dilation,
            dilation=dilation,
            groups=groups,
            radix=radix,
            reduction_factor=reduction_factor,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            dcn=dcn,
        )
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        if self.avg_down_stride:
            self.avd_layer = nn.AvgPool2d(3, self.conv2_stride, padding=1)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.norm1(self.conv1(x))))
        if self.avg_down_stride:
            out = self.avd_layer(out)
        out = self.norm3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_block(self, x)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)


@MODELS.register_module()
class ResNeSt(ResNetV1d):
    """ResNeSt backbone (MMDetection v2 ``ResNeSt``): ResNetV1d with split-attention blocks.

    Args:
        groups: Cardinality of the 3x3 convs.
        base_width: Width of one group at ``base_channels`` (used when ``groups > 1``).
        radix: Radix of the split-attention convs.
        reduction_factor: Reduction factor of the attention's hidden width.
        avg_down_stride: Strided blocks convolve at stride 1, then average-pool.
        **kwargs: The arguments of :class:`~detforge.models.backbones.ResNetV1d` (``depth``
            50, 101, 152 or 200, ``stem_channels``, ``out_indices``, ``norm_cfg``, ...).

    Example:
        >>> net = ResNeSt(depth=50, stem_channels=16, base_channels=8).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2), (1, 256, 1, 1)]
    """

    arch_settings: ClassVar[dict[int, tuple[type[nn.Module], tuple[int, ...]]]] = {
        50: (ResNeStBottleneck, (3, 4, 6, 3)),
        101: (ResNeStBottleneck, (3, 4, 23, 3)),
        152: (ResNeStBottleneck, (3, 8, 36, 3)),
        200: (ResNeStBottleneck, (3, 24, 36, 3)),
    }

    def __init__(
        self,
        groups: int = 1,
        base_width: int = 4,
        radix: int = 2,
        reduction_factor: int = 4,
        avg_down_stride: bool = True,
        **kwargs: Any,
    ) -> None:
        # read by _block_args() while ResNet.__init__ builds the stages
        self.groups = groups
        self.base_width = base_width
        self.radix = radix
        self.reduction_factor = reduction_factor
        self.avg_down_stride = avg_down_stride
        super().__init__(**kwargs)

    def _block_args(self, stage: int) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "base_width": self.base_width,
            "base_channels": self.base_channels,
            "radix": self.radix,
            "reduction_factor": self.reduction_factor,
            "avg_down_stride": self.avg_down_stride,
        }
