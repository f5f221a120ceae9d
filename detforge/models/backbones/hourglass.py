"""``HourglassNet`` (CornerNet / CentripetalNet backbone) with MMDetection v2's layout.

State-dict keys: ``stem.0`` (7x7 ConvModule) and ``stem.1`` (a BasicBlock ResLayer),
``hourglass_modules.{s}`` (nested :class:`HourglassModule`: ``up1``, ``low1``, ``low2``,
``low3``), ``inters``, ``conv1x1s``, ``out_convs`` and ``remap_convs``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.layers import BasicBlock, ConvModule, ResLayer, apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["HourglassModule", "HourglassNet"]

_BN: Cfg = MappingProxyType({"type": "BN", "requires_grad": True})
_NEAREST: Cfg = MappingProxyType({"mode": "nearest"})


class HourglassModule(nn.Module):
    """One hourglass: ``up1(x) + upsample(low3(low2(low1(x))))``, ``low2`` recursing.

    ``low1`` halves the resolution and goes from ``stage_channels[0]`` to
    ``stage_channels[1]`` channels; ``low2`` is the next, one shallower hourglass (a plain
    ResLayer of ``stage_blocks[1]`` blocks at ``depth == 1``); ``low3`` comes back to
    ``stage_channels[0]`` channels.

    As in v2, the nested hourglass is built with the default ``norm_cfg`` and
    ``upsample_cfg``, not this module's.

    Args:
        depth: Number of resolution halvings inside this module.
        stage_channels: Channels of this level and the deeper ones.
        stage_blocks: BasicBlocks per ResLayer of this level and the deeper ones.
        norm_cfg: Norm layer config of this level's ResLayers.
        upsample_cfg: Keyword arguments of ``F.interpolate``; without ``scale_factor`` the
            size of ``up1`` is used.

    Example:
        >>> hg = HourglassModule(2, [8, 8, 16], [1, 1, 1])
        >>> hg(torch.rand(1, 8, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        depth: int,
        stage_channels: Sequence[int],
        stage_blocks: Sequence[int],
        norm_cfg: Cfg = _BN,
        upsample_cfg: Cfg = _NEAREST,
    ) -> None:
        super().__init__()
        self.depth = depth
        cur_block, next_block = stage_blocks[0], stage_blocks[1]
        cur, nxt = stage_channels[0], stage_channels[1]
        self.up1 = ResLayer(BasicBlock, cur, cur, cur_block, norm_cfg=norm_cfg)
        self.low1 = ResLayer(BasicBlock, cur, nxt, cur_block, stride=2, norm_cfg=norm_cfg)
        self.low2: nn.Module
        if depth > 1:
            self.low2 = HourglassModule(depth - 1, stage_channels[1:], stage_blocks[1:])
        else:
            self.low2 = ResLayer(BasicBlock, nxt, nxt, next_block, norm_cfg=norm_cfg)
        self.low3 = ResLayer(
            BasicBlock, nxt, cur, cur_block, norm_cfg=norm_cfg, downsample_first=False
        )
        self.upsample_cfg = dict(upsample_cfg)

    def init_weights(self) -> None:
        """The children's own init (mmcv ``BaseModule`` without ``init_cfg``)."""
        apply_init_cfg(self, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C, H, W]`` -> ``Tensor[B, C, H, W]``."""
        up1 = self.up1(x)
        low3 = self.low3(self.low2(self.low1(x)))
        if "scale_factor" in self.upsample_cfg:
            up2 = F.interpolate(low3, **self.upsample_cfg)
        else:
            up2 = F.interpolate(low3, size=up1.shape[2:], **self.upsample_cfg)
        out: torch.Tensor = up1 + up2
        return out


@MODELS.register_module()
class HourglassNet(nn.Module):
    """Stacked hourglass network (MMDetection v2 ``HourglassNet``; Hourglass-104 by default).

    A stride-4 stem (7x7 ConvModule, stride 2, to half the channels, then a stride-2
    BasicBlock), then ``num_stacks`` hourglasses; after each, a 3x3 ConvModule
    (``out_convs``) gives that stack's output, and between stacks the features become
    ``inters[i](relu(conv1x1s[i](feat) + remap_convs[i](out)))``.

    Args:
        downsample_times: Resolution halvings inside each hourglass.
        num_stacks: Hourglasses stacked (1: Hourglass-52, 2: Hourglass-104).
        stage_channels: Channels of the hourglass levels.
        stage_blocks: BasicBlocks per ResLayer at each level.
        feat_channel: Channels of each stack's output.
        norm_cfg: Norm layer config of the stem, the top level of each hourglass and the
            convs between stacks (deeper hourglass levels use the default BN, as in v2).
        pretrained: Ignored, as in v2 (a warning says so).
        init_cfg: Must be ``None`` (v2 refuses it too): :meth:`init_weights` resets every
            ``Conv2d`` to PyTorch's default init, as CornerNet's training expects.

    Example:
        >>> net = HourglassNet(downsample_times=2, num_stacks=2, stage_channels=(8, 8, 16),
        ...                    stage_blocks=(1, 1, 1), feat_channel=4).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 4, 8, 8), (1, 4, 8, 8)]
    """

    def __init__(
        self,
        downsample_times: int = 5,
        num_stacks: int = 2,
        stage_channels: Sequence[int] = (256, 256, 384, 384, 384, 512),
        stage_blocks: Sequence[int] = (2, 2, 2, 2, 2, 4),
        feat_channel: int = 256,
        norm_cfg: Cfg = _BN,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if init_cfg is not None:
            raise ConfigKeyError(
                f"HourglassNet: init_cfg must be None (got {init_cfg!r}); its init_weights "
                "resets every conv, as in v2"
            )
        if pretrained is not None:
            warnings.warn(
                f"HourglassNet: pretrained={pretrained!r} is ignored (as in v2); load weights "
                "with load_from or init_cfg of the detector instead",
                stacklevel=2,
            )
        if num_stacks < 1:
            raise ValueError(f"HourglassNet: num_stacks must be >= 1, got {num_stacks}")
        if len(stage_channels) != len(stage_blocks):
            raise ValueError(
                f"HourglassNet: stage_channels {tuple(stage_channels)} and stage_blocks "
                f"{tuple(stage_blocks)} need the same length"
            )
        if len(stage_channels) <= downsample_times:
            raise ValueError(
                f"HourglassNet: downsample_times={downsample_times} needs more than "
                f"{downsample_times} stage_channels, got {len(stage_channels)}"
            )
        self.num_stacks = num_stacks
        self.init_cfg = None
        cur = stage_channels[0]
        self.stem = nn.Sequential(
            ConvModule(3, cur // 2, 7, padding=3, stride=2, norm_cfg=norm_cfg),
            ResLayer(BasicBlock, cur // 2, cur, 1, stride=2, norm_cfg=norm_cfg),
        )
        self.hourglass_modules = nn.ModuleList(
            HourglassModule(downsample_times, stage_channels, stage_blocks)
            for _ in range(num_stacks)
        )
        # v2 builds this ResLayer with num_stacks - 1 blocks, which still gives one block
        # for a single stack (unused then)
        self.inters = ResLayer(BasicBlock, cur, cur, num_stacks - 1, norm_cfg=norm_cfg)
        self.conv1x1s = nn.ModuleList(
            ConvModule(cur, cur, 1, norm_cfg=norm_cfg, act_cfg=None) for _ in range(num_stacks - 1)
        )
        self.out_convs = nn.ModuleList(
            ConvModule(cur, feat_channel, 3, padding=1, norm_cfg=norm_cfg)
            for _ in range(num_stacks)
        )
        self.remap_convs = nn.ModuleList(
            ConvModule(feat_channel, cur, 1, norm_cfg=norm_cfg, act_cfg=None)
            for _ in range(num_stacks - 1)
        )
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        """The children's own init, then PyTorch's default init for every ``Conv2d``."""
        apply_init_cfg(self, None)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Tensor[B, 3, H, W]`` -> ``num_stacks`` maps ``Tensor[B, feat_channel, H/4, W/4]``."""
        inter = self.stem(x)
        outs: list[torch.Tensor] = []
        for i in range(self.num_stacks):
            out = self.out_convs[i](self.hourglass_modules[i](inter))
            outs.append(out)
            if i < self.num_stacks - 1:
                inter = self.conv1x1s[i](inter) + self.remap_convs[i](out)
                inter = self.inters[i](self.relu(inter))
        return outs
