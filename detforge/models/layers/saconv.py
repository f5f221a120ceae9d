"""``SAC``: Switchable Atrous Convolution (DetectoRS), mmcv's ``SAConv2d``.

One AWS-standardised filter bank (:class:`~detforge.models.layers.conv_ws.ConvAWS2d`) is
applied twice: at the layer's dilation (``out_s``) and at three times its dilation and padding
with ``weight + weight_diff`` (``out_l``). A per-pixel switch, a 1x1 conv on the 5x5 average
(reflect-padded) of the input, mixes them: ``switch * out_s + (1 - switch) * out_l``. Global
context is added before (``pre_context``, on the input) and after (``post_context``, on the
output). With ``use_deform=True`` both branches are deformable convolutions whose offsets
(``offset_s``, ``offset_l``: 3x3 convs, 18 channels) are predicted from the averaged input.

Numerics are mmcv's: the conv ``bias`` (if any) is never added, the switch conv starts at
weight 0 / bias 1 (``out_s`` only), and ``weight_diff``, the context convs and the offset
convs start at zero. Keys: ``weight``, ``weight_gamma``, ``weight_beta``, ``weight_diff``,
``switch.*``, ``pre_context.*``, ``post_context.*`` (+ ``offset_s.*``, ``offset_l.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from detforge.models.layers.conv import CONV_LAYERS
from detforge.models.layers.conv_ws import ConvAWS2d
from detforge.models.layers.dcn import mmcv_offsets
from detforge.models.layers.weight_init import constant_init

__all__ = ["SAConv2d"]

_IntOrPair = int | tuple[int, int]


@CONV_LAYERS.register_module(name="SAC")
class SAConv2d(ConvAWS2d):
    """Switchable atrous convolution (see the module docstring).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size (3 with ``use_deform``: the offset convs predict 18 channels).
        stride: Stride.
        padding: Zero padding of the small-dilation branch (tripled for the other).
        dilation: Dilation of the small-dilation branch (tripled for the other).
        groups: Groups.
        bias: Creates a ``bias`` parameter (unused, as in mmcv).
        use_deform: Deformable branches.

    Example:
        >>> sac = SAConv2d(4, 8, 3, padding=1, use_deform=True)
        >>> sac(torch.rand(1, 4, 6, 6)).shape
        torch.Size([1, 8, 6, 6])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntOrPair,
        stride: _IntOrPair = 1,
        padding: _IntOrPair = 0,
        dilation: _IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
        use_deform: bool = False,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        if isinstance(self.padding, str):
            raise ValueError(f"SAConv2d: padding must be numbers, got {self.padding!r}")
        if use_deform and self.kernel_size != (3, 3):
            raise ValueError(
                f"SAConv2d: use_deform needs kernel_size 3 (18 offset channels), "
                f"got {self.kernel_size}"
            )
        self.use_deform = use_deform
        self.switch = nn.Conv2d(in_channels, 1, kernel_size=1, stride=stride, bias=True)
        self.weight_diff = nn.Parameter(torch.empty_like(self.weight))
        self.pre_context = nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=True)
        self.post_context = nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=True)
        if use_deform:
            self.offset_s = nn.Conv2d(in_channels, 18, 3, padding=1, stride=stride, bias=True)
            self.offset_l = nn.Conv2d(in_channels, 18, 3, padding=1, stride=stride, bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's init: switch weight 0 / bias 1; ``weight_diff``, context, offsets 0."""
        constant_init(self.switch, 0, bias=1)
        nn.init.zeros_(self.weight_diff)
        constant_init(self.pre_context, 0)
        constant_init(self.post_context, 0)
        if self.use_deform:
            constant_init(self.offset_s, 0)
            constant_init(self.offset_l, 0)

    def _branch(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        offset_conv: nn.Module | None,
        avg_x: torch.Tensor,
        scale: int,
    ) -> torch.Tensor:
        """One branch at ``scale`` times the padding and dilation (bias-free, as mmcv)."""
        padding = tuple(scale * int(p) for p in self.padding)
        dilation = tuple(scale * d for d in self.dilation)
        if offset_conv is not None:
            return deform_conv2d(
                x,
                mmcv_offsets(offset_conv(avg_x)),
                weight,
                None,
                stride=self.stride,
                padding=padding,
                dilation=dilation,
            )
        return F.conv2d(x, weight, None, self.stride, padding, dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H_out, W_out]``."""
        x = x + self.pre_context(F.adaptive_avg_pool2d(x, 1)).expand_as(x)
        avg_x = F.avg_pool2d(F.pad(x, pad=(2, 2, 2, 2), mode="reflect"), kernel_size=5, stride=1)
        switch = self.switch(avg_x)
        weight = self._get_weight(self.weight)
        offset_s = self.offset_s if self.use_deform else None
        offset_l = self.offset_l if self.use_deform else None
        out_s = self._branch(x, weight, offset_s, avg_x, 1)
        out_l = self._branch(x, weight + self.weight_diff, offset_l, avg_x, 3)
        out = switch * out_s + (1 - switch) * out_l
        return out + self.post_context(F.adaptive_avg_pool2d(out, 1)).expand_as(out)
