"""``PAFPN``: FPN plus PANet's bottom-up path (MMDetection v2 neck, same keys and numerics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.layers import ConvModule
from detforge.models.necks.fpn import FPN
from detforge.registry import MODELS, Cfg

__all__ = ["PAFPN"]


@MODELS.register_module()
class PAFPN(FPN):
    """Path Aggregation Network's neck (Liu et al., CVPR 2018).

    After :class:`FPN`'s top-down pass and 3x3 output convs, a bottom-up pass adds each level,
    downsampled by a stride-2 3x3 ``ConvModule`` (``downsample_convs.i``), to the level above,
    and a 3x3 ``ConvModule`` (``pafpn_convs.i``) smooths every level but the first. Extra
    levels are FPN's, built on these outputs.

    Takes :class:`FPN`'s arguments (``upsample_cfg`` too, which v2's PAFPN fixed to nearest);
    ``conv_cfg``, ``norm_cfg`` and ``act_cfg`` also configure the bottom-up convs.

    Example:
        >>> neck = PAFPN([8, 16, 32], 4, num_outs=4)
        >>> feats = [torch.rand(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([8, 16, 32])]
        >>> [tuple(o.shape) for o in neck(feats)]
        [(1, 4, 16, 16), (1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            num_outs=num_outs,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            **kwargs,
        )

        def conv(stride: int) -> ConvModule:
            return ConvModule(
                out_channels,
                out_channels,
                3,
                stride=stride,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                inplace=False,
            )

        used = self.backbone_end_level - self.start_level
        self.downsample_convs = nn.ModuleList()
        self.pafpn_convs = nn.ModuleList()
        for _ in range(used - 1):
            self.downsample_convs.append(conv(stride=2))
            self.pafpn_convs.append(conv(stride=1))

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` -> ``num_outs`` maps of ``out_channels`` each."""
        laterals = self._top_down(inputs)
        inter = [self.fpn_convs[i](lateral) for i, lateral in enumerate(laterals)]
        for i in range(len(inter) - 1):
            inter[i + 1] = inter[i + 1] + self.downsample_convs[i](inter[i])
        outs = [inter[0]] + [conv(x) for conv, x in zip(self.pafpn_convs, inter[1:], strict=True)]
        return self._add_extra_levels(inputs, laterals, outs)
