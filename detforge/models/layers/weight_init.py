"""mmcv's weight-init helpers: ``constant_init``, ``xavier_init``, ``kaiming_init``, ...

Each fills ``module.weight`` (where the module has one) by its rule and sets ``module.bias``
(where present) to the constant ``bias``. They are also exported by
:mod:`detforge.models.layers.init`, whose ``init_cfg`` initialisers call them.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

__all__ = [
    "bias_init_with_prob",
    "caffe2_xavier_init",
    "constant_init",
    "kaiming_init",
    "normal_init",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]


def _weight(module: nn.Module) -> Any:
    return getattr(module, "weight", None)


def _fill_bias(module: nn.Module, bias: float) -> None:
    value: Any = getattr(module, "bias", None)
    if value is not None:
        nn.init.constant_(value, bias)


def constant_init(module: nn.Module, val: float, bias: float = 0) -> None:
    """Fill ``module.weight`` with ``val`` and ``module.bias`` with ``bias`` (where present).

    Example:
        >>> conv = nn.Conv2d(1, 2, 1)
        >>> constant_init(conv, 0.5, bias=1)
        >>> conv.weight.flatten().tolist(), conv.bias.tolist()
        ([0.5, 0.5], [1.0, 1.0])
    """
    weight = _weight(module)
    if weight is not None:
        nn.init.constant_(weight, val)
    _fill_bias(module, bias)


def xavier_init(
    module: nn.Module, gain: float = 1, bias: float = 0, distribution: str = "normal"
) -> None:
    """Glorot init of ``module.weight`` (``'normal'`` or ``'uniform'``), constant bias."""
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"distribution must be 'uniform' or 'normal', got {distribution!r}")
    weight = _weight(module)
    if weight is not None:
        if distribution == "uniform":
            nn.init.xavier_uniform_(weight, gain=gain)
        else:
            nn.init.xavier_normal_(weight, gain=gain)
    _fill_bias(module, bias)


def normal_init(module: nn.Module, mean: float = 0, std: float = 1, bias: float = 0) -> None:
    """``weight ~ N(mean, std²)``, constant bias."""
    weight = _weight(module)
    if weight is not None:
        nn.init.normal_(weight, mean, std)
    _fill_bias(module, bias)


def trunc_normal_init(
    module: nn.Module,
    mean: float = 0,
    std: float = 1,
    a: float = -2,
    b: float = 2,
    bias: float = 0,
) -> None:
    """``weight ~ N(mean, std²)`` truncated to ``[a, b]`` (absolute bounds), constant bias."""
    weight = _weight(module)
    if weight is not None:
        nn.init.trunc_normal_(weight, mean, std, a, b)
    _fill_bias(module, bias)


def uniform_init(module: nn.Module, a: float = 0, b: float = 1, bias: float = 0) -> None:
    """``weight ~ U(a, b)``, constant bias."""
    weight = _weight(module)
    if weight is not None:
        nn.init.uniform_(weight, a, b)
    _fill_bias(module, bias)


def kaiming_init(
    module: nn.Module,
    a: float = 0,
    mode: str = "fan_out",
    nonlinearity: str = "relu",
    bias: float = 0,
    distribution: str = "normal",
) -> None:
    """He init of ``module.weight`` (``'normal'`` or ``'uniform'``), constant bias.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> conv = nn.Conv2d(64, 256, 3)
        >>> kaiming_init(conv)  # std = sqrt(2 / fan_out) = sqrt(2 / (256 * 9))
        >>> round(conv.weight.std().item() / math.sqrt(2 / 2304), 1)
        1.0
    """
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"distribution must be 'uniform' or 'normal', got {distribution!r}")
    weight = _weight(module)
    fan_mode: Any = mode
    relu_kind: Any = nonlinearity
    if weight is not None:
        if distribution == "uniform":
            nn.init.kaiming_uniform_(weight, a=a, mode=fan_mode, nonlinearity=relu_kind)
        else:
            nn.init.kaiming_normal_(weight, a=a, mode=fan_mode, nonlinearity=relu_kind)
    _fill_bias(module, bias)


def caffe2_xavier_init(module: nn.Module, bias: float = 0) -> None:
    """Caffe2's ``XavierFill``: Kaiming uniform with ``a=1``, ``fan_in``, ``leaky_relu``."""
    kaiming_init(
        module, a=1, mode="fan_in", nonlinearity="leaky_relu", bias=bias, distribution="uniform"
    )


def bias_init_with_prob(prior_prob: float) -> float:
    """The bias whose sigmoid is ``prior_prob``: ``-log((1 - p) / p)``.

    Example:
        >>> round(bias_init_with_prob(0.01), 4)
        -4.5951
    """
    if not 0 < prior_prob < 1:
        raise ValueError(f"prior_prob must lie in (0, 1), got {prior_prob}")
    return float(-math.log((1 - prior_prob) / prior_prob))
