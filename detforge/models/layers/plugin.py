"""Plugin layers inserted into residual blocks, and :func:`build_plugin_layer` (mmcv names).

Registered names: ``ContextBlock`` (GCNet), ``GeneralizedAttention`` (empirical attention),
``NonLocal2d``. A plugin takes ``in_channels`` plus its own arguments and maps a feature map
to one of the same shape. Its module name in a block is its abbreviation plus an optional
``postfix`` (``context_block``, ``gen_attention_block``, ``nonlocal_block``; mmcv's rule:
the class attribute ``_abbr_``, else the class name in snake case), which is what appears in
state-dict keys (``layer2.0.context_block.conv_mask.weight``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from detforge.models.layers._builder import _call, _resolve, _split_cfg
from detforge.registry import Registry

__all__ = ["PLUGIN_LAYERS", "build_plugin_layer", "plugin_abbr"]

PLUGIN_LAYERS = Registry("plugin layers")


def plugin_abbr(class_type: type) -> str:
    """``_abbr_`` of a plugin class, else its name in snake case.

    Example:
        >>> class FancyBlock: pass
        >>> plugin_abbr(FancyBlock)
        'fancy_block'
    """
    abbr = getattr(class_type, "_abbr_", None)
    if isinstance(abbr, str):
        return abbr
    word = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", class_type.__name__)
    word = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", word)
    return word.replace("-", "_").lower()


def build_plugin_layer(
    cfg: Mapping[str, Any], postfix: int | str = "", **kwargs: Any
) -> tuple[str, nn.Module]:
    """Build a plugin layer and the attribute name it gets (abbreviation + ``postfix``).

    Args:
        cfg: ``dict(type=..., **layer_args)``.
        postfix: Appended to the abbreviation.
        **kwargs: Further arguments, e.g. ``in_channels``.

    Raises:
        UnknownTypeError: ``type`` is not a registered plugin.
        ConfigTypeError: ``cfg`` is not a dict or passes an argument the layer does not take.

    Example:
        >>> name, layer = build_plugin_layer(dict(type='ContextBlock', ratio=0.25), in_channels=8)
        >>> name, type(layer).__name__
        ('context_block', 'ContextBlock')
    """
    layer_type, args = _split_cfg(cfg, "plugin cfg")
    cls = _resolve(PLUGIN_LAYERS, layer_type, "plugin cfg")
    layer: nn.Module = _call(cls, "plugin cfg", cfg, **kwargs, **args)
    return plugin_abbr(cls) + str(postfix), layer
