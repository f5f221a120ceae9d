"""``Scale``: a learnable scalar multiplier (mmcv 1.x ``mmcv.cnn.Scale``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Scale"]


class Scale(nn.Module):
    """Multiply the input by one learnable scalar, stored as the parameter ``scale``.

    Dense heads (FCOS, ATSS, GFL, VFNet) keep one per FPN level so that levels with different
    strides can regress distances of different magnitudes through shared convs.

    Args:
        scale: Initial value of the factor.

    Example:
        >>> layer = Scale(2.0)
        >>> layer(torch.ones(2)).tolist()
        [2.0, 2.0]
        >>> list(layer.state_dict())
        ['scale']
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale
