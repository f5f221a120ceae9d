"""``DyHead`` neck: scale-, spatial- and task-aware attention blocks (MMDetection v2).

Keys are v2's: ``dyhead_blocks.{i}.spatial_conv_{high,mid,low}.{conv.weight, norm.*}``
(modulated deformable 3x3 convs + GroupNorm), ``spatial_conv_offset.*`` (3x3 conv giving the
offsets and masks), ``scale_attn_module.1.*`` (1x1 conv) and ``task_attn_module.conv{1,2}.conv.*``
(:class:`~detforge.models.layers.dyrelu.DyReLU`).

Numerics (per level ``l`` of ``L``): offsets (channels 0..17) and sigmoid masks (18..26) come
from level ``l``; the deformable conv of level ``l`` (``mid``), of level ``l - 1`` with stride 2
(``low``) and of level ``l + 1`` upsampled bilinearly with ``align_corners=True`` (``high``), all
sampled with those offsets (for ``high``, the offsets' memory read as mmcv's kernel reads it, see
``_as_mmcv_reads``), are each weighted by the scale attention
``HSigmoid(ReLU(conv(avgpool(f))))`` and averaged over the terms present; DyReLU follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.layers import (
    ModulatedDeformConv2d,
    build_activation_layer,
    build_norm_layer,
    constant_init,
    normal_init,
)
from detforge.models.layers.dyrelu import DyReLU
from detforge.registry import MODELS, Cfg

__all__ = ["DyDCNv2", "DyHead", "DyHeadBlock"]

_GN16 = MappingProxyType({"type": "GN", "num_groups": 16, "requires_grad": True})
_HSIGMOID = MappingProxyType({"type": "HSigmoid", "bias": 3.0, "divisor": 6.0})
_OFFSET_DIM = 2 * 3 * 3  # (y, x) per 3x3 kernel position
_OFFSET_AND_MASK_DIM = 3 * 3 * 3  # + one mask value per position


class DyDCNv2(nn.Module):
    """A 3x3 modulated deformable conv (``conv``) with offsets and mask given, then ``norm``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Conv stride.
        norm_cfg: Norm after the conv (``None``: none, and the conv gets a bias).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, norm_cfg: Cfg | None = _GN16
    ) -> None:
        super().__init__()
        self.with_norm = norm_cfg is not None
        self.conv = ModulatedDeformConv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=not self.with_norm
        )
        if norm_cfg is not None:
            self.norm = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out_hw = _conv_out_hw(x, self.conv)
        offset = _as_mmcv_reads(offset, out_hw)
        mask = _as_mmcv_reads(mask, out_hw)
        x = self.conv(x.contiguous(), offset, mask)
        return self.norm(x) if self.with_norm else x


def _conv_out_hw(x: torch.Tensor, conv: ModulatedDeformConv2d) -> tuple[int, int]:
    sizes = []
    for size, pad, dil, kernel, stride in zip(
        x.shape[-2:], conv.padding, conv.dilation, conv.kernel_size, conv.stride, strict=True
    ):
        sizes.append((int(size) + 2 * pad - dil * (kernel - 1) - 1) // stride + 1)
    return sizes[0], sizes[1]


def _as_mmcv_reads(values: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """``values [B, K, h, w]`` as mmcv's deformable conv reads them for an ``out_hw`` output.

    mmcv's kernel does not check the offset/mask size: it reads each sample's buffer as
    ``[K, H_out, W_out]``. DyHead's ``spatial_conv_high`` runs on the next (smaller) level with
    the offsets of this level, so v2 uses the first ``K * H_out * W_out`` values of each
    sample's (contiguous) buffer, laid out again; that is what this returns. With matching
    sizes it is the tensor itself.
    """
    batch, channels, height, width = values.shape
    if (height, width) == out_hw:
        return values.contiguous()
    need = channels * out_hw[0] * out_hw[1]
    if need > channels * height * width:
        raise ValueError(f"DyDCNv2: offsets/masks of {height}x{width} for a larger {out_hw} output")
    flat = values.contiguous().view(batch, -1)[:, :need]
    return flat.reshape(batch, channels, *out_hw)


class DyHeadBlock(nn.Module):
    """One DyHead block over all pyramid levels (see the module docstring).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        zero_init_offset: Start ``spatial_conv_offset`` at zero (no deformation, masks 0.5).
        act_cfg: Last activation of the scale attention.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        zero_init_offset: bool = True,
        act_cfg: Cfg = _HSIGMOID,
    ) -> None:
        super().__init__()
        self.zero_init_offset = zero_init_offset
        self.offset_and_mask_dim = _OFFSET_AND_MASK_DIM
        self.offset_dim = _OFFSET_DIM
        self.spatial_conv_high = DyDCNv2(in_channels, out_channels)
        self.spatial_conv_mid = DyDCNv2(in_channels, out_channels)
        self.spatial_conv_low = DyDCNv2(in_channels, out_channels, stride=2)
        self.spatial_conv_offset = nn.Conv2d(in_channels, _OFFSET_AND_MASK_DIM, 3, padding=1)
        self.scale_attn_module = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(out_channels, 1, 1),
            nn.ReLU(inplace=True),
            build_activation_layer(act_cfg),
        )
        self.task_attn_module = DyReLU(out_channels)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, 0, 0.01)
        if self.zero_init_offset:
            constant_init(self.spatial_conv_offset, 0)

    def _weighted(self, feat: torch.Tensor) -> torch.Tensor:
        return feat * self.scale_attn_module(feat)

    def forward(self, x: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        outs = []
        for level, feat in enumerate(x):
            offset_and_mask = self.spatial_conv_offset(feat)
            offset = offset_and_mask[:, : self.offset_dim]
            mask = offset_and_mask[:, self.offset_dim :].sigmoid()
            summed = self._weighted(self.spatial_conv_mid(feat, offset, mask))
            terms = 1
            if level > 0:
                summed = summed + self._weighted(self.spatial_conv_low(x[level - 1], offset, mask))
                terms += 1
            if level < len(x) - 1:
                # v2 (and DyHead's official code) upsamples after the conv, not before
                high = F.interpolate(
                    self.spatial_conv_high(x[level + 1], offset, mask),
                    size=feat.shape[-2:],
                    mode="bilinear",
                    align_corners=True,
                )
                summed = summed + self._weighted(high)
                terms += 1
            outs.append(self.task_attn_module(summed / terms))
        return outs


@MODELS.register_module()
class DyHead(nn.Module):
    """DyHead neck: ``num_blocks`` :class:`DyHeadBlock` applied in sequence to all levels.

    Used after an FPN (``neck=[dict(type='FPN', ...), dict(type='DyHead', ...)]``).

    Args:
        in_channels: Input channels of every level.
        out_channels: Output channels.
        num_blocks: Blocks.
        zero_init_offset: Start the offset convs at zero (the DyHead configs set ``False``,
            following the official code).
        init_cfg: Must be ``None``: the blocks initialise themselves (v2 refuses it too).

    Example:
        >>> neck = DyHead(in_channels=16, out_channels=16, num_blocks=1).eval()
        >>> feats = [torch.rand(1, 16, 8, 8), torch.rand(1, 16, 4, 4)]
        >>> [tuple(f.shape) for f in neck(feats)]
        [(1, 16, 8, 8), (1, 16, 4, 4)]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int = 6,
        zero_init_offset: bool = True,
        init_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if init_cfg is not None:
            raise ConfigKeyError(
                "DyHead: init_cfg must be None (its blocks initialise themselves), "
                f"got {init_cfg!r}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_blocks = num_blocks
        self.zero_init_offset = zero_init_offset
        self.dyhead_blocks = nn.Sequential(
            *[
                DyHeadBlock(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    zero_init_offset=zero_init_offset,
                )
                for i in range(num_blocks)
            ]
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """One ``Tensor[B, C, H_l, W_l]`` per level -> the same number of levels."""
        if not isinstance(inputs, tuple | list):
            raise TypeError(f"DyHead expects a tuple or list of feature maps, got {type(inputs)}")
        return tuple(self.dyhead_blocks(inputs))
