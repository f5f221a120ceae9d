"""``YOLOXPAFPN``: the path aggregation network of YOLOX (MMDetection v2 layout and numerics).

State-dict keys: ``reduce_layers.{i}``, ``top_down_blocks.{i}`` (CSPLayers), ``downsamples.{i}``,
``bottom_up_blocks.{i}`` (CSPLayers) and ``out_convs.{i}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.layers.csp_layer import SWISH, TORCH_DEFAULT_CONV_INIT, YOLO_BN, CSPLayer
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.registry import MODELS, Cfg

__all__ = ["YOLOXPAFPN"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_UPSAMPLE: Cfg = MappingProxyType({"scale_factor": 2, "mode": "nearest"})


@MODELS.register_module()
class YOLOXPAFPN(nn.Module):
    """Top-down then bottom-up CSP fusion of the backbone levels, then 1x1 output convs.

    Top-down, from the coarsest level: ``reduce_layers`` (1x1) bring a level to the channels
    of the next finer one, it is upsampled, concatenated with that level and fused by a
    ``top_down_blocks`` CSPLayer. Bottom-up, from the finest: ``downsamples`` (stride-2 3x3)
    halve the resolution, concatenate with the top-down map of the next coarser level and
    fuse with a ``bottom_up_blocks`` CSPLayer. ``out_convs`` (1x1) bring every level to
    ``out_channels``.

    Args:
        in_channels: Channels of the backbone levels, finest first.
        out_channels: Channels of every output.
        num_csp_blocks: Bottlenecks per CSPLayer.
        use_depthwise: Depthwise separable ``downsamples`` and CSP 3x3 convs.
        upsample_cfg: Arguments of ``nn.Upsample``.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        init_cfg: Initialisation config used by :meth:`init_weights` (default: PyTorch's
            kaiming-uniform ``a=sqrt(5)`` for every Conv2d).

    Example:
        >>> neck = YOLOXPAFPN([8, 16, 32], 8, num_csp_blocks=1)
        >>> feats = [torch.rand(1, c, s, s) for c, s in ((8, 8), (16, 4), (32, 2))]
        >>> [tuple(f.shape) for f in neck(feats)]
        [(1, 8, 8, 8), (1, 8, 4, 4), (1, 8, 2, 2)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_csp_blocks: int = 3,
        use_depthwise: bool = False,
        upsample_cfg: Cfg = _UPSAMPLE,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = YOLO_BN,
        act_cfg: Cfg = SWISH,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.init_cfg = TORCH_DEFAULT_CONV_INIT if init_cfg is None else init_cfg
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        csp: dict[str, Any] = {
            "num_blocks": num_csp_blocks,
            "add_identity": False,
            "use_depthwise": use_depthwise,
        }
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        n = len(self.in_channels)

        self.upsample = nn.Upsample(**upsample_cfg)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(n - 1, 0, -1):
            fine = self.in_channels[idx - 1]
            self.reduce_layers.append(ConvModule(self.in_channels[idx], fine, 1, **layers))
            self.top_down_blocks.append(CSPLayer(fine * 2, fine, **csp, **layers))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(n - 1):
            cin = self.in_channels[idx]
            self.downsamples.append(conv(cin, cin, 3, stride=2, padding=1, **layers))
            self.bottom_up_blocks.append(
                CSPLayer(cin * 2, self.in_channels[idx + 1], **csp, **layers)
            )
        self.out_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, **layers) for c in self.in_channels
        )

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` (finest first) -> as many maps of
        ``out_channels``."""
        n = len(self.in_channels)
        if len(inputs) != n:
            raise ValueError(f"YOLOXPAFPN: got {len(inputs)} levels, in_channels has {n}")
        # top-down: inner[0] is the finest level reached so far
        inner = [inputs[-1]]
        for step, idx in enumerate(range(n - 1, 0, -1)):
            coarse = self.reduce_layers[step](inner[0])
            inner[0] = coarse
            fused = self.top_down_blocks[step](
                torch.cat([self.upsample(coarse), inputs[idx - 1]], 1)
            )
            inner.insert(0, fused)
        # bottom-up
        outs = [inner[0]]
        for idx in range(n - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner[idx + 1]], 1)))
        return tuple(conv(out) for conv, out in zip(self.out_convs, outs, strict=True))
