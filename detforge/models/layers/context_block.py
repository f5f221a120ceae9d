"""``ContextBlock``: the global context block of GCNet (mmcv's ``ContextBlock``).

Context modelling pools the feature map to one vector per image, by a softmax attention over
positions (``pooling_type='att'``, a 1x1 ``conv_mask``) or by averaging (``'avg'``); then the
fusion transforms add it to every position (``channel_add``) and/or scale the channels by its
sigmoid (``channel_mul``), each through ``conv 1x1 → LayerNorm → ReLU → conv 1x1`` with a
bottleneck of ``int(in_channels * ratio)`` channels.

Keys: ``conv_mask.*``, ``channel_add_conv.{0,1,3}.*``, ``channel_mul_conv.{0,1,3}.*``. As in
mmcv the constructor initialises ``conv_mask`` with Kaiming (fan_in) and zeroes the last conv
of each fusion branch (so the block starts as the identity) in ``reset_parameters``; there is
no ``init_weights``, so a backbone's ``Kaiming`` init_cfg for ``Conv2d`` overrides it, as in v2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from detforge.models.layers.plugin import PLUGIN_LAYERS
from detforge.models.layers.weight_init import constant_init, kaiming_init

__all__ = ["ContextBlock"]

_FUSIONS = ("channel_add", "channel_mul")


def _fusion_branch(channels: int, planes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, planes, kernel_size=1),
        nn.LayerNorm([planes, 1, 1]),
        nn.ReLU(inplace=True),
        nn.Conv2d(planes, channels, kernel_size=1),
    )


@PLUGIN_LAYERS.register_module()
class ContextBlock(nn.Module):
    """GCNet's global context block (see the module docstring).

    Args:
        in_channels: Channels of the feature map.
        ratio: Bottleneck ratio of the fusion transforms.
        pooling_type: ``'att'`` or ``'avg'``.
        fusion_types: Non-empty subset of ``('channel_add', 'channel_mul')``.

    Example:
        >>> block = ContextBlock(16, ratio=0.25)
        >>> x = torch.rand(2, 16, 5, 5)
        >>> torch.equal(block(x), x)  # the last conv starts at zero
        True
    """

    _abbr_ = "context_block"

    def __init__(
        self,
        in_channels: int,
        ratio: float,
        pooling_type: str = "att",
        fusion_types: Sequence[str] = ("channel_add",),
    ) -> None:
        super().__init__()
        if pooling_type not in ("att", "avg"):
            raise ValueError(
                f"ContextBlock: pooling_type must be 'att' or 'avg', got {pooling_type!r}"
            )
        if not isinstance(fusion_types, list | tuple) or not fusion_types:
            raise ValueError(
                f"ContextBlock: fusion_types must be a non-empty list/tuple, got {fusion_types!r}"
            )
        unknown = [f for f in fusion_types if f not in _FUSIONS]
        if unknown:
            raise ValueError(
                f"ContextBlock: unknown fusion_types {unknown}; choose from {_FUSIONS}"
            )
        self.in_channels = in_channels
        self.ratio = ratio
        self.planes = int(in_channels * ratio)
        self.pooling_type = pooling_type
        self.fusion_types = tuple(fusion_types)
        if pooling_type == "att":
            self.conv_mask = nn.Conv2d(in_channels, 1, kernel_size=1)
            self.softmax = nn.Softmax(dim=2)
        else:
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
        add = "channel_add" in fusion_types
        mul = "channel_mul" in fusion_types
        self.channel_add_conv = _fusion_branch(in_channels, self.planes) if add else None
        self.channel_mul_conv = _fusion_branch(in_channels, self.planes) if mul else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming (fan_in) for ``conv_mask``; zero the last conv of each fusion branch."""
        if self.pooling_type == "att":
            kaiming_init(self.conv_mask, mode="fan_in")
        for branch in (self.channel_add_conv, self.channel_mul_conv):
            if branch is not None:
                constant_init(branch[-1], val=0)

    def spatial_pool(self, x: torch.Tensor) -> torch.Tensor:
        """The context vector ``Tensor[B, C, 1, 1]`` of ``x [B, C, H, W]``."""
        if self.pooling_type != "att":
            pooled: torch.Tensor = self.avg_pool(x)
            return pooled
        batch, channels, height, width = x.shape
        weights = self.softmax(self.conv_mask(x).view(batch, 1, height * width))
        context = torch.matmul(x.view(batch, 1, channels, height * width), weights.unsqueeze(-1))
        return context.view(batch, channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * sigmoid(mul(context)) + add(context)`` (the enabled terms), shaped like ``x``."""
        context = self.spatial_pool(x)
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(context))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context)
        return out
