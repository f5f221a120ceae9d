"""``YOLOV3Neck`` and its ``DetectionBlock`` (MMDetection v2 layout and numerics).

State-dict keys: ``detect{i}.conv{1..5}`` (ConvModules) and ``conv{i}`` (the 1x1 conv before
each upsampling), ``i`` counting from the coarsest level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["DetectionBlock", "YOLOV3Neck"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_BN: Cfg = MappingProxyType({"type": "BN", "requires_grad": True})
_LEAKY: Cfg = MappingProxyType({"type": "LeakyReLU", "negative_slope": 0.1})


class DetectionBlock(nn.Module):
    """Five ConvModules alternating 1x1 to ``out_channels`` and 3x3 to twice that.

    Example:
        >>> DetectionBlock(16, 4)(torch.rand(1, 16, 3, 3)).shape
        torch.Size([1, 4, 3, 3])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _LEAKY,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        double = out_channels * 2
        self.init_cfg = init_cfg
        self.conv1 = ConvModule(in_channels, out_channels, 1, **layers)
        self.conv2 = ConvModule(out_channels, double, 3, padding=1, **layers)
        self.conv3 = ConvModule(double, out_channels, 1, **layers)
        self.conv4 = ConvModule(out_channels, double, 3, padding=1, **layers)
        self.conv5 = ConvModule(double, out_channels, 1, **layers)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H, W]``."""
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = conv(x)
        return x


@MODELS.register_module()
class YOLOV3Neck(nn.Module):
    """The neck of YOLOv3, a simplified FPN (MMDetection v2 ``YOLOV3Neck``).

    Takes the backbone's maps from fine to coarse and works from the coarsest: ``detect1`` on
    the last map; then for each finer map, ``conv{i}`` (1x1) on the previous output,
    nearest 2x upsampling, concatenation with the map, and ``detect{i+1}``. The outputs go
    from the coarsest level to the finest.

    Args:
        num_scales: Number of levels.
        in_channels: Channels of the levels, coarsest first (``in_channels[0]`` is the last
            backbone map's).
        out_channels: Output channels of the levels, coarsest first.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config (LeakyReLU 0.1).
        init_cfg: Initialisation config used by :meth:`init_weights` (default: none, each
            ConvModule's own init).

    Example:
        >>> neck = YOLOV3Neck(3, in_channels=[32, 16, 8], out_channels=[8, 4, 2])
        >>> feats = [torch.rand(1, c, s, s) for c, s in ((8, 8), (16, 4), (32, 2))]
        >>> [tuple(f.shape) for f in neck(feats)]
        [(1, 8, 2, 2), (1, 4, 4, 4), (1, 2, 8, 8)]
    """

    def __init__(
        self,
        num_scales: int,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _LEAKY,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if not num_scales == len(in_channels) == len(out_channels):
            raise ValueError(
                f"YOLOV3Neck: num_scales={num_scales} needs as many in_channels "
                f"{list(in_channels)} and out_channels {list(out_channels)}"
            )
        self.num_scales = num_scales
        self.in_channels = list(in_channels)
        self.out_channels = list(out_channels)
        self.init_cfg = init_cfg
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        self.detect1 = DetectionBlock(in_channels[0], out_channels[0], **layers)
        for i in range(1, num_scales):
            cin, cout = in_channels[i], out_channels[i]
            self.add_module(f"conv{i}", ConvModule(out_channels[i - 1], cout, 1, **layers))
            self.add_module(f"detect{i + 1}", DetectionBlock(cin + cout, cout, **layers))

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Maps fine to coarse -> ``num_scales`` maps, coarse to fine."""
        if len(feats) != self.num_scales:
            raise ValueError(f"YOLOV3Neck: got {len(feats)} maps, num_scales={self.num_scales}")
        out = self.detect1(feats[-1])
        outs = [out]
        for i, x in enumerate(reversed(feats[:-1])):
            up = F.interpolate(getattr(self, f"conv{i + 1}")(out), scale_factor=2)
            out = getattr(self, f"detect{i + 2}")(torch.cat((up, x), 1))
            outs.append(out)
        return tuple(outs)
