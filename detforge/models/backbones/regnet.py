"""``RegNet``: a ResNeXt-like backbone whose stage widths come from a quantised linear rule.

Widths are generated as MMDetection v2 does (Radosavovic et al., "Designing Network Design
Spaces", 2020): block ``j`` of ``depth`` blocks gets the continuous width ``w0 + wa * j``,
snapped to ``w0 * wm^k`` (``k`` rounded), rounded to a multiple of 8; runs of equal widths
form the stages; each stage's bottleneck width is rounded to a multiple of its group width
(``group_w``, at most the bottleneck width). The arithmetic is NumPy's, in v2's order, so the
channel counts (and therefore v2 checkpoints) match exactly.

Keys are ResNet's (``conv1``/``bn1`` stem, ``layer{i}.{j}.conv{k}``/``bn{k}``,
``layer{i}.0.downsample.0``/``.1``) with a 3x3 stride-2 stem and no max pooling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
from torch import nn

from detforge.errors import ConfigKeyError, ConfigTypeError
from detforge.models.backbones.resnet import ResNet
from detforge.models.layers import build_conv_layer, build_norm_layer
from detforge.models.layers.res_layer import Bottleneck
from detforge.registry import MODELS

__all__ = ["RegNet", "RegNetStages", "regnet_stages"]

_ARCH_KEYS = ("w0", "wa", "wm", "group_w", "depth", "bot_mul")


class _RegNetBottleneck(Bottleneck):
    """ResNeXt's grouped Bottleneck without the 4x expansion (v2 sets ``expansion = 1``)."""

    expansion = 1


@dataclass(frozen=True)
class RegNetStages:
    """Per-stage layout of a RegNet: output widths, block counts and group widths."""

    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    group_widths: tuple[int, ...]
    bottleneck_ratios: tuple[float, ...]


def regnet_stages(arch: Mapping[str, Any], divisor: int = 8) -> RegNetStages:
    """The stages of a RegNet ``arch`` (``w0``, ``wa``, ``wm``, ``group_w``, ``depth``,
    ``bot_mul``), computed as MMDetection v2's ``RegNet`` does.

    Raises:
        ConfigKeyError: a key of ``arch`` is missing.
        ValueError: the parameters are out of range (``wa < 0``, ``w0 <= 0``, ``wm <= 1`` or
            ``w0`` not a multiple of ``divisor``).

    Example:
        >>> s = regnet_stages(RegNet.arch_settings['regnetx_3.2gf'])
        >>> s.widths, s.blocks, s.group_widths
        ((96, 192, 432, 1008), (2, 6, 15, 2), (48, 48, 48, 48))
    """
    missing = [k for k in _ARCH_KEYS if k not in arch]
    if missing:
        raise ConfigKeyError(f"RegNet: arch {dict(arch)!r} lacks {missing}")
    w0, wa, wm, depth = arch["w0"], arch["wa"], arch["wm"], arch["depth"]
    if wa < 0 or w0 <= 0 or wm <= 1 or w0 % divisor:
        raise ValueError(
            f"RegNet: arch {dict(arch)!r} needs wa >= 0, w0 > 0, wm > 1 and w0 % {divisor} == 0"
        )
    # per-block widths: the linear rule, snapped to powers of wm, rounded to the divisor
    widths_cont = np.arange(depth) * wa + w0
    ks = np.round(np.log(widths_cont / w0) / np.log(wm))
    widths = (np.round(np.divide(w0 * np.power(wm, ks), divisor)) * divisor).astype(int)
    # runs of equal widths are stages
    starts = [j for j in range(depth) if j == 0 or widths[j] != widths[j - 1]]
    stage_widths = [int(widths[j]) for j in starts]
    stage_blocks = np.diff([*starts, depth]).tolist()
    num_stages = len(stage_widths)
    ratios = [arch["bot_mul"]] * num_stages
    # make each bottleneck width a multiple of its group width
    bottlenecks = [int(w * b) for w, b in zip(stage_widths, ratios, strict=True)]
    groups = [min(arch["group_w"], w) for w in bottlenecks]
    bottlenecks = [int(round(w / g) * g) for w, g in zip(bottlenecks, groups, strict=True)]
    stage_widths = [int(w / b) for w, b in zip(bottlenecks, ratios, strict=True)]
    return RegNetStages(tuple(stage_widths), tuple(stage_blocks), tuple(groups), tuple(ratios))


@MODELS.register_module()
class RegNet(ResNet):
    """RegNet backbone (MMDetection v2 ``RegNet``; RegNetX, i.e. without squeeze-excitation).

    Args:
        arch: A name from :attr:`arch_settings` (``'regnetx_400mf'`` ... ``'regnetx_12gf'``) or
            a dict with ``w0``, ``wa``, ``wm``, ``group_w``, ``depth`` and ``bot_mul``.
        stem_channels: Channels of the 3x3 stride-2 stem conv.
        base_channels: Kept for v2 compatibility (the widths come from ``arch``).
        strides: Stride of each stage (the first block's 3x3 conv).
        **kwargs: The other arguments of :class:`~detforge.models.backbones.ResNet`
            (``out_indices``, ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``dcn``,
            ``init_cfg``, ...; ``depth`` and ``num_stages`` follow from ``arch``).

    Example:
        >>> import torch
        >>> net = RegNet(arch='regnetx_400mf').eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 32, 8, 8), (1, 64, 4, 4), (1, 160, 2, 2), (1, 384, 1, 1)]
    """

    # v2's name for the named RegNets (ResNet's arch_settings maps depths to blocks instead)
    arch_settings: ClassVar[Mapping[str, Mapping[str, Any]]]  # type: ignore[assignment]
    arch_settings = MappingProxyType(
        {
            "regnetx_400mf": dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=22, bot_mul=1.0),
            "regnetx_800mf": dict(w0=56, wa=35.73, wm=2.28, group_w=16, depth=16, bot_mul=1.0),
            "regnetx_1.6gf": dict(w0=80, wa=34.01, wm=2.25, group_w=24, depth=18, bot_mul=1.0),
            "regnetx_3.2gf": dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0),
            "regnetx_4.0gf": dict(w0=96, wa=38.65, wm=2.43, group_w=40, depth=23, bot_mul=1.0),
            "regnetx_6.4gf": dict(w0=184, wa=60.83, wm=2.07, group_w=56, depth=17, bot_mul=1.0),
            "regnetx_8.0gf": dict(w0=80, wa=49.56, wm=2.88, group_w=120, depth=23, bot_mul=1.0),
            "regnetx_12gf": dict(w0=168, wa=73.36, wm=2.37, group_w=112, depth=19, bot_mul=1.0),
        }
    )

    def __init__(
        self,
        arch: str | Mapping[str, Any],
        stem_channels: int = 32,
        base_channels: int = 32,
        strides: Sequence[int] = (2, 2, 2, 2),
        **kwargs: Any,
    ) -> None:
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise ConfigKeyError(
                    f"RegNet: unknown arch {arch!r}; choose from {list(self.arch_settings)} "
                    "or give a dict of w0, wa, wm, group_w, depth, bot_mul"
                )
            arch = self.arch_settings[arch]
        elif not isinstance(arch, Mapping):
            raise ConfigTypeError(f"RegNet: arch must be a str or a dict, got {arch!r}")
        # read by _stage_plan() and _block_args() while ResNet.__init__ builds the stages
        self.regnet = regnet_stages(arch)
        self.stage_widths = list(self.regnet.widths)
        self.group_widths = list(self.regnet.group_widths)
        self.bottleneck_ratio = list(self.regnet.bottleneck_ratios)
        super().__init__(
            depth=sum(self.regnet.blocks),
            stem_channels=stem_channels,
            base_channels=base_channels,
            num_stages=len(self.regnet.widths),
            strides=strides,
            **kwargs,
        )

    def _stage_plan(
        self, depth: int, base_channels: int
    ) -> tuple[type[nn.Module], list[tuple[int, int]]]:
        return _RegNetBottleneck, list(zip(self.regnet.widths, self.regnet.blocks, strict=True))

    def _block_args(self, stage: int) -> dict[str, Any]:
        width = self.regnet.widths[stage]
        group_width = self.regnet.group_widths[stage]
        bottleneck = round(width * self.regnet.bottleneck_ratios[stage])
        # Bottleneck's grouped width: floor(width * (group_width / width)) * groups
        return {
            "groups": bottleneck // group_width,
            "base_width": group_width,
            "base_channels": width,
        }

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            raise ValueError("RegNet: deep_stem is not supported (v2's RegNet has a 3x3 stem)")
        self.conv1 = build_conv_layer(
            self.conv_cfg, in_channels, stem_channels, 3, stride=2, padding=1, bias=False
        )
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()  # RegNet's stem does not pool
