"""``FPN_CARAFE``: an FPN whose top-down pass upsamples with CARAFE (MMDetection v2 neck)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers import ConvModule, xavier_init
from detforge.models.layers.carafe import CARAFEPack
from detforge.models.necks.fpn import backbone_end_level, check_in_channels
from detforge.registry import MODELS, Cfg

__all__ = ["FPN_CARAFE"]

_CARAFE: Cfg = MappingProxyType(
    dict(type="carafe", up_kernel=5, up_group=1, encoder_kernel=3, encoder_dilation=1)
)
_ORDERS = (("conv", "norm", "act"), ("act", "conv", "norm"))
_UPSAMPLERS = ("nearest", "bilinear", "carafe", None)


def _upsampler(cfg: Cfg, channels: int) -> nn.Module:
    """v2's x2 upsampler of an ``upsample_cfg`` (any ``scale_factor`` in it is replaced by 2)."""
    args = dict(cfg)
    kind = args.pop("type")
    args.pop("scale_factor", None)
    if kind == "carafe":
        try:
            return CARAFEPack(channels=channels, scale_factor=2, **args)
        except TypeError as exc:
            raise ValueError(f"FPN_CARAFE: upsample_cfg {dict(cfg)!r}: {exc}") from exc
    if args:
        raise ValueError(f"FPN_CARAFE: upsample_cfg type {kind!r} takes no keys {sorted(args)}")
    return nn.Upsample(
        scale_factor=2, mode=kind, align_corners=None if kind == "nearest" else False
    )


@MODELS.register_module()
class FPN_CARAFE(nn.Module):
    """FPN with a choice of upsampler in the top-down pass (Wang et al., ICCV 2019).

    Laterals (``lateral_convs.i``) of the used backbone levels are followed by one stride-2
    3x3 lateral per extra level (the first on the last backbone level, the others on the
    previous lateral). The top-down pass then runs through *all* of them: each lateral plus
    the upsampled one above (``upsample_modules.i``; cropped to size when the upsampled map is
    larger), then a 3x3 ``fpn_convs.i`` per level.

    Args:
        in_channels: Channels of each backbone level.
        out_channels: Channels of every level.
        num_outs: Number of output levels.
        start_level: First backbone level used.
        end_level: Last backbone level used (-1 = the last one).
        norm_cfg: Norm config of all convs (convs have a bias only without it).
        act_cfg: Activation of all convs (default none).
        order: ``('conv', 'norm', 'act')`` or ``('act', 'conv', 'norm')``.
        upsample_cfg: ``type`` ``'carafe'`` (with :class:`CARAFEPack`'s arguments),
            ``'nearest'``, ``'bilinear'`` or ``None`` (no upsampling: the level above is
            cropped). v2 also named ``'deconv'`` and ``'pixel_shuffle'`` but could not build
            them (it looked for ``upsample_kernel`` as an attribute of a dict).
        init_cfg: Must be ``None``: the neck initialises itself (as in v2).

    Example:
        >>> neck = FPN_CARAFE([4, 8], 4, num_outs=3,
        ...                   upsample_cfg=dict(type='carafe', compressed_channels=2))
        >>> [o.shape[-1] for o in neck([torch.rand(1, 4, 16, 16), torch.rand(1, 8, 8, 8)])]
        [16, 8, 4]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        end_level: int = -1,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = None,
        order: Sequence[str] = ("conv", "norm", "act"),
        upsample_cfg: Cfg = _CARAFE,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if init_cfg is not None:
            raise ValueError(
                f"FPN_CARAFE: init_cfg must be None (the neck initialises itself), got {init_cfg!r}"
            )
        if tuple(order) not in _ORDERS:
            raise ValueError(f"FPN_CARAFE: order must be one of {_ORDERS}, got {order!r}")
        self.upsample_cfg = dict(upsample_cfg)
        self.upsample = self.upsample_cfg.get("type")
        if self.upsample not in _UPSAMPLERS:
            raise ValueError(
                f"FPN_CARAFE: upsample_cfg type must be one of {_UPSAMPLERS}, got "
                f"{self.upsample!r} (v2 could not build 'deconv' or 'pixel_shuffle' either)"
            )
        self.in_channels = check_in_channels(in_channels, "FPN_CARAFE")
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.with_bias = norm_cfg is None
        self.order = tuple(order)
        self.start_level = start_level
        self.end_level = end_level
        self.backbone_end_level = backbone_end_level(
            self.num_ins, num_outs, start_level, end_level, "FPN_CARAFE"
        )
        self.relu = nn.ReLU(inplace=False)

        def conv(cin: int, kernel: int, stride: int = 1) -> ConvModule:
            return ConvModule(
                cin,
                out_channels,
                kernel,
                stride=stride,
                padding=(kernel - 1) // 2,
                norm_cfg=norm_cfg,
                bias=self.with_bias,
                act_cfg=act_cfg,
                inplace=False,
                order=self.order,
            )

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        self.upsample_modules = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(conv(self.in_channels[i], 1))
            self.fpn_convs.append(conv(out_channels, 3))
            if i != self.backbone_end_level - 1 and self.upsample is not None:
                self.upsample_modules.append(_upsampler(self.upsample_cfg, out_channels))
        for i in range(num_outs - self.backbone_end_level + start_level):
            source = self.in_channels[self.backbone_end_level - 1] if i == 0 else out_channels
            self.lateral_convs.append(conv(source, 3, stride=2))
            self.fpn_convs.append(conv(out_channels, 3))
            if self.upsample is not None:
                self.upsample_modules.append(_upsampler(self.upsample_cfg, out_channels))

    def init_weights(self) -> None:
        """v2's: Xavier-uniform for every conv, then CARAFE's own init (content encoder
        Normal(std=0.001)); norm layers keep weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, ConvModule):
                m.init_weights()
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                xavier_init(m, distribution="uniform")
        for m in self.modules():
            if isinstance(m, CARAFEPack):
                m.init_weights()

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` -> ``num_outs`` maps of ``out_channels``."""
        if len(inputs) != self.num_ins:
            raise ValueError(
                f"FPN_CARAFE: got {len(inputs)} input levels, in_channels has {self.num_ins}"
            )
        used = self.backbone_end_level - self.start_level
        laterals: list[torch.Tensor] = []
        for i, lateral_conv in enumerate(self.lateral_convs):
            if i <= used:  # the backbone levels, then the last one for the first extra level
                source = inputs[min(i + self.start_level, len(inputs) - 1)]
            else:
                source = laterals[-1]
            laterals.append(lateral_conv(source))
        for i in range(len(laterals) - 1, 0, -1):
            above = self.upsample_modules[i - 1](laterals[i]) if self.upsample else laterals[i]
            below = laterals[i - 1]
            if above.shape[2] < below.shape[2] or above.shape[3] < below.shape[3]:
                raise ValueError(
                    f"FPN_CARAFE: level {i} ({tuple(above.shape[2:])} after upsampling) is "
                    f"smaller than level {i - 1} ({tuple(below.shape[2:])})"
                )
            laterals[i - 1] = below + above[:, :, : below.shape[2], : below.shape[3]]
        return tuple(conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals, strict=True))
