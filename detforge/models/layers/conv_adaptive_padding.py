"""``Conv2dAdaptivePadding``: a convolution with TensorFlow's ``'SAME'`` padding (mmcv name).

Registered in ``CONV_LAYERS`` as ``Conv2dAdaptivePadding`` (EfficientNet's default
``conv_cfg``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers.conv import CONV_LAYERS

__all__ = ["Conv2dAdaptivePadding"]


@CONV_LAYERS.register_module()
class Conv2dAdaptivePadding(nn.Conv2d):
    """``nn.Conv2d`` that pads its input as TensorFlow's ``padding='SAME'`` does.

    The output is ``ceil(input / stride)`` in each dimension; the padding that needs is split
    between the two sides with the odd pixel at the bottom/right. The ``padding`` argument is
    accepted and ignored, as in mmcv.

    Example:
        >>> conv = Conv2dAdaptivePadding(1, 1, 3, stride=2, padding=1)
        >>> conv(torch.rand(1, 1, 7, 8)).shape
        torch.Size([1, 1, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(
            x.shape[-2:], self.weight.shape[-2:], self.stride, self.dilation, strict=True
        ):
            pads.append(max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0))
        pad_h, pad_w = pads
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
