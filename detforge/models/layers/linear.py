"""Linear layer builder (mmdet v2's ``LINEAR_LAYERS``): ``Linear`` and ``NormedLinear``.

A box head's ``cls_predictor_cfg``/``reg_predictor_cfg`` names the layer of its last fc; the
cosine classifier ``NormedLinear`` is registered by
:mod:`detforge.models.layers.normed_predictor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from detforge.models.layers._builder import _call, _resolve, _split_cfg
from detforge.registry import Registry

__all__ = ["LINEAR_LAYERS", "build_linear_layer"]

LINEAR_LAYERS = Registry("linear layers")
LINEAR_LAYERS.register_module(name="Linear", module=nn.Linear)


def build_linear_layer(cfg: Mapping[str, Any] | None, *args: Any, **kwargs: Any) -> nn.Module:
    """Build a linear layer: ``cls(*args, **kwargs, **cfg_without_type)``.

    Args:
        cfg: ``dict(type=..., **layer_args)``, or ``None`` for ``nn.Linear``.
        *args: Positional arguments of the layer (``in_features, out_features``).
        **kwargs: Keyword arguments of the layer.

    Raises:
        UnknownTypeError: ``type`` is not a registered linear layer.
        ConfigTypeError: ``cfg`` is not a dict, or an argument is not accepted by the layer.

    Example:
        >>> build_linear_layer(dict(type='Linear'), 4, 2)
        Linear(in_features=4, out_features=2, bias=True)
    """
    cfg = {"type": "Linear"} if cfg is None else cfg
    layer_type, layer_args = _split_cfg(cfg, "linear layer cfg")
    cls = _resolve(LINEAR_LAYERS, layer_type, "linear layer cfg")
    layer: nn.Module = _call(cls, "linear layer cfg", cfg, *args, **kwargs, **layer_args)
    return layer
