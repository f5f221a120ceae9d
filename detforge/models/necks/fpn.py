"""``FPN``: Feature Pyramid Network (MMDetection v2 neck, same keys and numerics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = ["FPN", "backbone_end_level", "check_in_channels"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_EXTRA_SOURCES = ("on_input", "on_lateral", "on_output")
_NEAREST: Cfg = MappingProxyType({"mode": "nearest"})
_XAVIER_UNIFORM: Cfg = MappingProxyType(
    {"type": "Xavier", "layer": "Conv2d", "distribution": "uniform"}
)


@MODELS.register_module()
class FPN(nn.Module):
    """Feature Pyramid Network.

    Lateral 1x1 convs (``lateral_convs.i``) bring backbone levels ``start_level`` …
    ``end_level`` to ``out_channels``; a top-down pass adds each upsampled level to the one
    below; 3x3 convs (``fpn_convs.i``) smooth the sums. Levels beyond the backbone's come from
    stride-2 max pooling of the last output (``add_extra_convs=False``) or from stride-2 3x3
    convs (``fpn_convs.{n}``, …) applied to the last backbone input (``'on_input'``, also what
    ``True`` means), the last lateral (``'on_lateral'``) or the last output (``'on_output'``).

    Args:
        in_channels: Channels of each backbone level.
        out_channels: Channels of every output level.
        num_outs: Number of output levels.
        start_level: First backbone level used.
        end_level: Last backbone level used (-1 = the last one); with an explicit end level no
            extra levels are allowed.
        add_extra_convs: ``False``, ``True`` (= ``'on_input'``), ``'on_input'``,
            ``'on_lateral'`` or ``'on_output'``.
        relu_before_extra_convs: Apply ReLU before the second and later extra convs.
        no_norm_on_lateral: Build the lateral convs without ``norm_cfg``.
        conv_cfg: Conv layer config of all convs.
        norm_cfg: Norm layer config of all convs.
        act_cfg: Activation config of all convs (default none).
        upsample_cfg: Keyword arguments of ``F.interpolate`` in the top-down pass; without
            ``scale_factor`` the size of the lower level is used.
        init_cfg: Default Xavier-uniform for every ``Conv2d``, applied by :meth:`init_weights`.

    Example:
        >>> fpn = FPN([8, 16, 32], 4, num_outs=5, add_extra_convs='on_input')
        >>> feats = [torch.rand(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([8, 16, 32])]
        >>> [tuple(o.shape) for o in fpn(feats)]
        [(1, 4, 16, 16), (1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2), (1, 4, 1, 1)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        relu_before_extra_convs: bool = False,
        no_norm_on_lateral: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = None,
        upsample_cfg: Cfg = _NEAREST,
        init_cfg: _InitCfg = _XAVIER_UNIFORM,
    ) -> None:
        super().__init__()
        self.in_channels = check_in_channels(in_channels, type(self).__name__)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.upsample_cfg = dict(upsample_cfg)
        self.init_cfg = plain_cfg(init_cfg)
        self.start_level = start_level
        self.end_level = end_level
        self.backbone_end_level = backbone_end_level(
            self.num_ins, num_outs, start_level, end_level, type(self).__name__
        )
        self.add_extra_convs = _extra_source(add_extra_convs, type(self).__name__)

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(
                ConvModule(
                    self.in_channels[i],
                    out_channels,
                    1,
                    conv_cfg=conv_cfg,
                    norm_cfg=None if no_norm_on_lateral else norm_cfg,
                    act_cfg=act_cfg,
                    inplace=False,
                )
            )
            self.fpn_convs.append(
                ConvModule(
                    out_channels,
                    out_channels,
                    3,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg,
                    inplace=False,
                )
            )
        extra_levels = num_outs - self.backbone_end_level + start_level
        if self.add_extra_convs and extra_levels >= 1:
            for i in range(extra_levels):
                first_on_input = i == 0 and self.add_extra_convs == "on_input"
                in_ch = (
                    self.in_channels[self.backbone_end_level - 1]
                    if first_on_input
                    else out_channels
                )
                self.fpn_convs.append(
                    ConvModule(
                        in_ch,
                        out_channels,
                        3,
                        stride=2,
                        padding=1,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg,
                        inplace=False,
                    )
                )

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` -> ``num_outs`` maps of ``out_channels`` each."""
        laterals = self._top_down(inputs)
        outs = [self.fpn_convs[i](lateral) for i, lateral in enumerate(laterals)]
        return self._add_extra_levels(inputs, laterals, outs)

    def _top_down(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The laterals of the used levels after the top-down pass (each plus the one above,
        upsampled)."""
        if len(inputs) != self.num_ins:
            raise ValueError(
                f"{type(self).__name__}: got {len(inputs)} input levels, "
                f"in_channels has {self.num_ins}"
            )
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up
        return laterals

    def _add_extra_levels(
        self,
        inputs: Sequence[torch.Tensor],
        laterals: Sequence[torch.Tensor],
        outs: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        """``outs`` (one per used level) followed by the levels up to ``num_outs``."""
        used = len(laterals)
        if self.num_outs > used:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == "on_input":
                    source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == "on_lateral":
                    source = laterals[-1]
                else:
                    source = outs[-1]
                outs.append(self.fpn_convs[used](source))
                for i in range(used + 1, self.num_outs):
                    last = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](last))
        return tuple(outs)


def check_in_channels(in_channels: Sequence[int], neck: str) -> list[int]:
    """``in_channels`` as a list; a bare int or string is a ``TypeError`` naming ``neck``."""
    if isinstance(in_channels, str | int) or not isinstance(in_channels, Sequence):
        raise TypeError(f"{neck}: in_channels must be a list of ints, got {in_channels!r}")
    return list(in_channels)


def backbone_end_level(
    num_ins: int, num_outs: int, start_level: int, end_level: int, neck: str = "FPN"
) -> int:
    """The backbone level after the last one a pyramid neck uses; checks the level arguments.

    ``end_level`` -1 (or the last level) allows extra levels (``num_outs`` beyond the levels
    used); any other end level must give exactly ``num_outs`` levels.

    Raises:
        ValueError: a level lies outside the backbone's or ``num_outs`` does not fit; the
            message names ``neck``.

    Example:
        >>> backbone_end_level(4, 5, start_level=1, end_level=-1)
        4
    """
    if not 0 <= start_level < num_ins:
        raise ValueError(f"{neck}: start_level={start_level} must lie in 0..{num_ins - 1}")
    if end_level in (-1, num_ins - 1):
        if num_outs < num_ins - start_level:
            raise ValueError(
                f"{neck}: num_outs={num_outs} is less than the {num_ins - start_level} "
                f"backbone levels used (start_level={start_level})"
            )
        return num_ins
    if not start_level <= end_level < num_ins:
        raise ValueError(f"{neck}: end_level={end_level} must lie in {start_level}..{num_ins - 1}")
    if num_outs != end_level - start_level + 1:
        raise ValueError(
            f"{neck}: with end_level={end_level}, num_outs must be "
            f"{end_level - start_level + 1}, got {num_outs}"
        )
    return end_level + 1


def _extra_source(add_extra_convs: bool | str, neck: str) -> str | bool:
    if isinstance(add_extra_convs, bool):
        return "on_input" if add_extra_convs else False
    if add_extra_convs in _EXTRA_SOURCES:
        return add_extra_convs
    raise ValueError(
        f"{neck}: add_extra_convs must be a bool or one of {_EXTRA_SOURCES}, "
        f"got {add_extra_convs!r}"
    )
