"""``HRFPN``: HRNet's feature pyramid (MMDetection v2 neck, same keys and numerics).

The branches of an HRNet are upsampled (bilinear) to the highest resolution, concatenated and
reduced by a 1x1 conv (``reduction_conv``); the pyramid levels are that map average- or
max-pooled by ``2^i``, each smoothed by a 3x3 conv (``fpn_convs.i``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["HRFPN"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_CAFFE2_XAVIER: Cfg = MappingProxyType({"type": "Caffe2Xavier", "layer": "Conv2d"})
_POOLING: dict[str, Callable[..., torch.Tensor]] = {"MAX": F.max_pool2d, "AVG": F.avg_pool2d}


@MODELS.register_module()
class HRFPN(nn.Module):
    """High-resolution feature pyramid over all branches of an HRNet.

    Args:
        in_channels: Channels of each input branch (highest resolution first, each next one
            at half the resolution).
        out_channels: Channels of every output level.
        num_outs: Number of output levels (strides ``s·2^i`` of the first input's ``s``).
        pooling_type: ``'AVG'`` or ``'MAX'``; v2 takes any other value as ``'AVG'``, so does
            detforge.
        conv_cfg: Conv layer config of all convs.
        norm_cfg: Accepted for v2 compatibility; v2 builds the convs without it (with a bias),
            and so does detforge.
        with_cp: Gradient checkpointing of the convs.
        stride: Stride of the 3x3 output convs.
        init_cfg: Initialisation config; ``None`` means the default, Caffe2 Xavier for every
            ``Conv2d``.

    Example:
        >>> import torch
        >>> neck = HRFPN([4, 8], 6, num_outs=3)
        >>> outs = neck([torch.rand(1, 4, 8, 8), torch.rand(1, 8, 4, 4)])
        >>> [tuple(o.shape) for o in outs]
        [(1, 6, 8, 8), (1, 6, 4, 4), (1, 6, 2, 2)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int = 5,
        pooling_type: str = "AVG",
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        with_cp: bool = False,
        stride: int = 1,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, str | int) or not isinstance(in_channels, Sequence):
            raise TypeError(f"HRFPN: in_channels must be a list of ints, got {in_channels!r}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.with_cp = with_cp
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.init_cfg = _CAFFE2_XAVIER if init_cfg is None else init_cfg
        self.reduction_conv = ConvModule(
            sum(self.in_channels), out_channels, 1, conv_cfg=conv_cfg, act_cfg=None
        )
        self.fpn_convs = nn.ModuleList(
            ConvModule(
                out_channels,
                out_channels,
                3,
                padding=1,
                stride=stride,
                conv_cfg=conv_cfg,
                act_cfg=None,
            )
            for _ in range(num_outs)
        )
        self.pooling = _POOLING.get(pooling_type, F.avg_pool2d)

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def _conv(self, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out: torch.Tensor = checkpoint(conv, x, use_reentrant=False)
            return out
        result: torch.Tensor = conv(x)
        return result

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``num_ins`` maps (``Tensor[B, C_i, H/2^i, W/2^i]``) -> ``num_outs`` maps
        ``Tensor[B, out_channels, H/2^i, W/2^i]`` (divided by ``stride``)."""
        if len(inputs) != self.num_ins:
            raise ValueError(f"HRFPN: expected {self.num_ins} inputs, got {len(inputs)}")
        ups = [inputs[0]]
        ups += [
            F.interpolate(inputs[i], scale_factor=2**i, mode="bilinear")
            for i in range(1, self.num_ins)
        ]
        out = self._conv(self.reduction_conv, torch.cat(ups, dim=1))
        levels = [out] + [
            self.pooling(out, kernel_size=2**i, stride=2**i) for i in range(1, self.num_outs)
        ]
        return tuple(
            self._conv(conv, level) for conv, level in zip(self.fpn_convs, levels, strict=True)
        )
