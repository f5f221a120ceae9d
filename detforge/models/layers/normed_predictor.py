"""Cosine-similarity predictors (v2's ``NormedLinear`` and ``NormedConv2d``).

Both divide the input (over channels) and each output unit's weights by their L2 norms (raised
to ``power``, plus ``eps``) and multiply the input by ``tempearture`` (v2's spelling, kept so
configs load) before the ordinary linear map / convolution; the bias is added unnormalised.
Seesaw-loss configs use them as the classifier of the box head
(``cls_predictor_cfg=dict(type='NormedLinear', tempearture=20)``) and of the mask head
(``predictor_cfg=dict(type='NormedConv2d', tempearture=20)``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers.conv import CONV_LAYERS
from detforge.models.layers.linear import LINEAR_LAYERS

__all__ = ["NormedConv2d", "NormedLinear"]


def _unit(t: torch.Tensor, flat: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    """``t / (||flat||_2 ** power + eps)``, the norm taken over dim 1 of ``flat``."""
    norm = flat.norm(dim=1, keepdim=True).pow(power) + eps
    return t / norm.view(norm.shape + (1,) * (t.dim() - norm.dim()))


@LINEAR_LAYERS.register_module()
class NormedLinear(nn.Linear):
    """A linear layer on unit-norm inputs and weight rows, scaled by ``tempearture``.

    Args:
        *args: ``nn.Linear``'s ``in_features, out_features``.
        tempearture: Scale of the normalised input (v2 spelling).
        power: Power of the norms.
        eps: Added to the norms.
        **kwargs: ``nn.Linear``'s keyword arguments (``bias``).

    Example:
        >>> layer = NormedLinear(4, 2, tempearture=10)
        >>> layer(torch.ones(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        *args: Any,
        tempearture: float = 20,
        power: float = 1.0,
        eps: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tempearture = tempearture
        self.power = power
        self.eps = eps
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.normal_(self.weight, mean=0, std=0.01)
        if self.bias is not None:
            nn.init.constant_(self.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _unit(self.weight, self.weight, self.power, self.eps)
        x = _unit(x, x, self.power, self.eps) * self.tempearture
        return F.linear(x, weight, self.bias)


@CONV_LAYERS.register_module()
class NormedConv2d(nn.Conv2d):
    """A convolution on inputs and filters normalised over their channels.

    Args:
        *args: ``nn.Conv2d``'s positional arguments.
        tempearture: Scale of the normalised input (v2 spelling).
        power: Power of the norms.
        eps: Added to the norms.
        norm_over_kernel: Normalise each filter over all its weights instead of over the input
            channels at each kernel position.
        **kwargs: ``nn.Conv2d``'s keyword arguments.

    Example:
        >>> layer = NormedConv2d(4, 2, 1)
        >>> layer(torch.ones(1, 4, 3, 3)).shape
        torch.Size([1, 2, 3, 3])
    """

    def __init__(
        self,
        *args: Any,
        tempearture: float = 20,
        power: float = 1.0,
        eps: float = 1e-6,
        norm_over_kernel: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tempearture = tempearture
        self.power = power
        self.norm_over_kernel = norm_over_kernel
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_over_kernel:
            weight = _unit(self.weight, self.weight.flatten(1), self.power, self.eps)
        else:
            weight = _unit(self.weight, self.weight, self.power, self.eps)
        x = _unit(x, x, self.power, self.eps) * self.tempearture
        return self._conv_forward(x, weight, self.bias)
