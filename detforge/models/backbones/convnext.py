"""``ConvNeXt`` backbone with MMClassification 0.x's layout (``mmcls.ConvNeXt`` in v2 configs).

MMDetection v2's ConvNeXt configs import ``mmcls.models`` and name ``type='mmcls.ConvNeXt'``;
detforge registers this class under both ``ConvNeXt`` and ``mmcls.ConvNeXt`` (see
``detforge.config.config.PROVIDED_IMPORTS``), so they build without MMClassification.

State-dict keys are mmcls 0.25's: ``downsample_layers.0.{0, 1}`` (stem conv, LayerNorm),
``downsample_layers.{i}.{0, 1}`` (LayerNorm, 2x2 stride-2 conv), ``stages.{i}.{j}.
{depthwise_conv, norm, pointwise_conv1, pointwise_conv2, gamma}`` and ``norm{i}`` per output.

Numerics: each block is depth-wise 7x7 conv, channel LayerNorm, Linear (x4), GELU, Linear,
layer scale ``gamma`` and a (stochastic-depth) residual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.layers import (
    NORM_LAYERS,
    apply_init_cfg,
    build_activation_layer,
    build_norm_layer,
)
from detforge.models.layers.transformer import build_dropout
from detforge.registry import MODELS, Cfg

__all__ = ["ConvNeXt", "ConvNeXtBlock", "LayerNorm2d"]

_GELU = MappingProxyType({"type": "GELU"})
_LN2D = MappingProxyType({"type": "LN2d", "eps": 1e-6})
_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@NORM_LAYERS.register_module(name="LN2d")
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``Tensor[B, C, H, W]`` (mmcls ``LN2d``).

    Example:
        >>> LayerNorm2d(4)(torch.rand(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__(num_channels, eps=eps, elementwise_affine=elementwise_affine)
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"LayerNorm2d expects [N, C, H, W], got {tuple(x.shape)}")
        out = F.layer_norm(
            x.permute(0, 2, 3, 1).contiguous(),
            self.normalized_shape,
            self.weight,
            self.bias,
            self.eps,
        )
        return out.permute(0, 3, 1, 2).contiguous()


class ConvNeXtBlock(nn.Module):
    """Depth-wise 7x7 conv, norm, pointwise MLP, layer scale, residual.

    Args:
        in_channels: Channels.
        norm_cfg: Norm after the depth-wise conv.
        act_cfg: Activation between the pointwise layers.
        mlp_ratio: Hidden channels / channels.
        linear_pw_conv: Pointwise layers are ``nn.Linear`` on channels-last tensors (else 1x1
            convs); the two are equivalent, the keys' shapes differ.
        drop_path_rate: Stochastic depth.
        layer_scale_init_value: Initial ``gamma`` (0: no layer scale).
        with_cp: Gradient checkpointing.
    """

    def __init__(
        self,
        in_channels: int,
        norm_cfg: Cfg = _LN2D,
        act_cfg: Cfg = _GELU,
        mlp_ratio: float = 4.0,
        linear_pw_conv: bool = True,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.linear_pw_conv = linear_pw_conv
        self.depthwise_conv = nn.Conv2d(
            in_channels, in_channels, kernel_size=7, padding=3, groups=in_channels
        )
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        mid = int(mlp_ratio * in_channels)
        if linear_pw_conv:
            self.pointwise_conv1: nn.Module = nn.Linear(in_channels, mid)
            self.pointwise_conv2: nn.Module = nn.Linear(mid, in_channels)
        else:
            self.pointwise_conv1 = nn.Conv2d(in_channels, mid, kernel_size=1)
            self.pointwise_conv2 = nn.Conv2d(mid, in_channels, kernel_size=1)
        self.act = build_activation_layer(act_cfg)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(in_channels))
            if layer_scale_init_value > 0
            else None
        )
        self.drop_path = build_dropout(
            {"type": "DropPath", "drop_prob": drop_path_rate} if drop_path_rate > 0 else None
        )

    def _inner(self, x: torch.Tensor) -> torch.Tensor:
        out = self.depthwise_conv(x)
        if self.linear_pw_conv:
            # channels last from the norm on (mmcls permutes to NCHW and back in between,
            # copying twice per block; the values are the same)
            out = self._norm_channels_last(out.permute(0, 2, 3, 1))
            out = self.pointwise_conv2(self.act(self.pointwise_conv1(out)))
            if self.gamma is not None:
                out = out * self.gamma
            out = out.permute(0, 3, 1, 2)
        else:
            out = self.pointwise_conv2(self.act(self.pointwise_conv1(self.norm(out))))
            if self.gamma is not None:
                out = out.mul(self.gamma.view(1, -1, 1, 1))
        # added into the branch (a fresh tensor), which keeps its channels-last layout for the
        # next depth-wise conv, as torchvision does
        return self.drop_path(out).add_(x)

    def _norm_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """``self.norm`` of an NCHW map, given and returned as its NHWC view."""
        norm = self.norm
        if isinstance(norm, nn.LayerNorm):  # LN2d normalises the last (channel) dim there
            return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        return norm(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out: torch.Tensor = cp.checkpoint(self._inner, x, use_reentrant=False)
            return out
        return self._inner(x)


@MODELS.register_module(name=["ConvNeXt", "mmcls.ConvNeXt"])
class ConvNeXt(nn.Module):
    """ConvNeXt (``A ConvNet for the 2020s``), MMClassification 0.25's ``ConvNeXt``.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'base'``, ``'large'``, ``'xlarge'`` or
            ``dict(depths=[...], channels=[...])``.
        in_channels: Image channels.
        stem_patch_size: Kernel and stride of the stem conv.
        norm_cfg: Norm layers of the blocks, the stem and the outputs.
        act_cfg: Block activation.
        linear_pw_conv: Pointwise layers as ``nn.Linear`` (else 1x1 convs).
        drop_path_rate: Stochastic depth, rising linearly to this over all blocks.
        layer_scale_init_value: Initial layer scale (0: none).
        out_indices: Stages whose (normed, ``norm{i}``) outputs are returned; negative
            indices count from the end.
        frozen_stages: Stages (with their downsampling layers) to freeze, from the first.
        gap_before_final_norm: Return the globally pooled ``[B, C]`` vector per output (the
            classification default; detection configs set ``False`` for feature maps).
        with_cp: Gradient checkpointing of the blocks.
        init_cfg: Initialisation config (``None``: PyTorch's defaults, as mmcls).

    mmcls resolves a negative ``out_indices`` entry as ``4 + index``; this uses the number of
    stages, which is the same for every arch in :attr:`arch_settings`.

    Example:
        >>> net = ConvNeXt(arch=dict(depths=[1, 1], channels=[8, 16]), out_indices=(0, 1),
        ...                gap_before_final_norm=False).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 8, 8, 8), (1, 16, 4, 4)]
    """

    arch_settings: ClassVar[dict[str, dict[str, list[int]]]] = {
        "tiny": {"depths": [3, 3, 9, 3], "channels": [96, 192, 384, 768]},
        "small": {"depths": [3, 3, 27, 3], "channels": [96, 192, 384, 768]},
        "base": {"depths": [3, 3, 27, 3], "channels": [128, 256, 512, 1024]},
        "large": {"depths": [3, 3, 27, 3], "channels": [192, 384, 768, 1536]},
        "xlarge": {"depths": [3, 3, 27, 3], "channels": [256, 512, 1024, 2048]},
    }

    def __init__(
        self,
        arch: str | Mapping[str, Sequence[int]] = "tiny",
        in_channels: int = 3,
        stem_patch_size: int = 4,
        norm_cfg: Cfg = _LN2D,
        act_cfg: Cfg = _GELU,
        linear_pw_conv: bool = True,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        out_indices: int | Sequence[int] = -1,
        frozen_stages: int = 0,
        gap_before_final_norm: bool = True,
        with_cp: bool = False,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        settings = _arch(arch)
        self.depths, self.channels = list(settings["depths"]), list(settings["channels"])
        self.num_stages = len(self.depths)
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        indices = [i + self.num_stages if i < 0 else i for i in indices]
        if any(not 0 <= i < self.num_stages for i in indices):
            raise ConfigKeyError(
                f"ConvNeXt: out_indices {out_indices!r} outside the {self.num_stages} stages"
            )
        self.out_indices = indices
        self.frozen_stages = frozen_stages
        self.gap_before_final_norm = gap_before_final_norm
        self.init_cfg = init_cfg
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, sum(self.depths))]
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(
                        in_channels,
                        self.channels[0],
                        kernel_size=stem_patch_size,
                        stride=stem_patch_size,
                    ),
                    build_norm_layer(norm_cfg, self.channels[0])[1],
                )
            ]
        )
        self.stages = nn.ModuleList()
        first = 0
        for i, (depth, channels) in enumerate(zip(self.depths, self.channels, strict=True)):
            if i > 0:
                previous = self.channels[i - 1]
                self.downsample_layers.append(
                    nn.Sequential(
                        LayerNorm2d(previous),
                        nn.Conv2d(previous, channels, kernel_size=2, stride=2),
                    )
                )
            self.stages.append(
                nn.Sequential(
                    *[
                        ConvNeXtBlock(
                            in_channels=channels,
                            drop_path_rate=rates[first + j],
                            norm_cfg=norm_cfg,
                            act_cfg=act_cfg,
                            linear_pw_conv=linear_pw_conv,
                            layer_scale_init_value=layer_scale_init_value,
                            with_cp=with_cp,
                        )
                        for j in range(depth)
                    ]
                )
            )
            first += depth
            if i in self.out_indices:
                self.add_module(f"norm{i}", build_norm_layer(norm_cfg, channels)[1])
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages):
            for module in (self.downsample_layers[i], self.stages[i]):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> ConvNeXt:
        """Set training mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (mmcv ``BaseModule`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, C, H, W]`` -> per output ``Tensor[B, C_i, H/4/2^i, W/4/2^i]`` (or
        ``Tensor[B, C_i]`` with ``gap_before_final_norm``)."""
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(self.downsample_layers[i](x))
            if i in self.out_indices:
                norm = getattr(self, f"norm{i}")
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean([-2, -1], keepdim=True)).flatten(1))
                else:
                    outs.append(norm(x).contiguous())
        return tuple(outs)


def _arch(arch: str | Mapping[str, Sequence[int]]) -> Mapping[str, Sequence[int]]:
    if isinstance(arch, str):
        if arch not in ConvNeXt.arch_settings:
            raise ConfigKeyError(
                f"ConvNeXt: unknown arch {arch!r}; choose from {sorted(ConvNeXt.arch_settings)} "
                "or pass dict(depths=[...], channels=[...])"
            )
        return ConvNeXt.arch_settings[arch]
    if not isinstance(arch, Mapping) or "depths" not in arch or "channels" not in arch:
        raise ConfigKeyError(f"ConvNeXt: arch dict needs 'depths' and 'channels', got {arch!r}")
    if len(arch["depths"]) != len(arch["channels"]):
        raise ConfigKeyError(
            f"ConvNeXt: depths {list(arch['depths'])} and channels {list(arch['channels'])} "
            "need the same length"
        )
    return arch
