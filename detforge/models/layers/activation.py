"""Activation layers and :func:`build_activation_layer` (mmcv 1.x names).

Registered names: ``ReLU``, ``LeakyReLU``, ``PReLU``, ``RReLU``, ``ReLU6``, ``ELU``,
``Sigmoid``, ``Tanh``, ``GELU``, ``SiLU`` (the PyTorch modules), ``Swish`` (``x * sigmoid(x)``),
``HSigmoid`` (``clamp((x + bias) / divisor, min_value, max_value)``, mmcv >= 1.4.4 defaults),
``HSwish`` (``torch.nn.Hardswish``) and ``Clamp`` / ``Clip``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from detforge.models.layers._builder import _call, _resolve, _split_cfg
from detforge.registry import Registry

__all__ = [
    "ACTIVATION_LAYERS",
    "Clamp",
    "HSigmoid",
    "Swish",
    "accepts_inplace",
    "build_activation_layer",
]

ACTIVATION_LAYERS = Registry("activation layers")

for _module in (
    nn.ReLU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ReLU6,
    nn.ELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.GELU,
    nn.SiLU,
):
    ACTIVATION_LAYERS.register_module(module=_module)
ACTIVATION_LAYERS.register_module(name="HSwish", module=nn.Hardswish)


@ACTIVATION_LAYERS.register_module(name=["Clamp", "Clip"])
class Clamp(nn.Module):
    """Clamp every value into ``[min, max]``.

    Example:
        >>> Clamp(min=-1.0, max=1.0)(torch.tensor([-3.0, 0.5, 2.0])).tolist()
        [-1.0, 0.5, 1.0]
    """

    def __init__(self, min: float = -1.0, max: float = 1.0) -> None:
        super().__init__()
        self.min = min
        self.max = max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, min=self.min, max=self.max)


@ACTIVATION_LAYERS.register_module()
class Swish(nn.Module):
    """``x * sigmoid(x)`` (the same function as ``nn.SiLU``, without an ``inplace`` option).

    Example:
        >>> Swish()(torch.zeros(2)).tolist()
        [0.0, 0.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


@ACTIVATION_LAYERS.register_module()
class HSigmoid(nn.Module):
    """Hard sigmoid ``clamp((x + bias) / divisor, min_value, max_value)``.

    The defaults (``bias=3, divisor=6``) are PyTorch's ``Hardsigmoid`` and mmcv's since 1.4.4;
    mmcv before 1.4.4 used ``bias=1, divisor=2``: pass those to reproduce old models.

    Example:
        >>> HSigmoid()(torch.tensor([-4.0, 0.0, 4.0])).tolist()
        [0.0, 0.5, 1.0]
    """

    def __init__(
        self,
        bias: float = 3.0,
        divisor: float = 6.0,
        min_value: float = 0.0,
        max_value: float = 1.0,
    ) -> None:
        super().__init__()
        if divisor == 0:
            raise ValueError("HSigmoid: divisor must not be 0")
        self.bias = bias
        self.divisor = divisor
        self.min_value = min_value
        self.max_value = max_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + self.bias) / self.divisor).clamp(self.min_value, self.max_value)


def accepts_inplace(layer_type: Any) -> bool:
    """Whether the activation named ``layer_type`` takes an ``inplace`` argument.

    Example:
        >>> accepts_inplace('ReLU'), accepts_inplace('Sigmoid')
        (True, False)
    """
    cls = _resolve(ACTIVATION_LAYERS, layer_type, "act_cfg")
    try:
        return "inplace" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def build_activation_layer(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the activation layer that ``cfg`` describes.

    Args:
        cfg: ``dict(type=name_or_class, **layer_args)``.

    Returns:
        The activation module.

    Raises:
        UnknownTypeError: ``type`` is not a registered activation (close names are listed).
        ConfigTypeError: ``cfg`` is not a dict or passes an argument the layer does not take.

    Example:
        >>> build_activation_layer(dict(type='LeakyReLU', negative_slope=0.1))
        LeakyReLU(negative_slope=0.1)
    """
    layer_type, args = _split_cfg(cfg, "act_cfg")
    cls = _resolve(ACTIVATION_LAYERS, layer_type, "act_cfg")
    layer: nn.Module = _call(cls, "act_cfg", cfg, **args)
    return layer
