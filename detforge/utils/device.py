"""Moving nested batches to a device, and finding the device a model lives on."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["model_device", "to_device"]


def to_device(value: Any, device: torch.device | str) -> Any:
    """``value`` with every tensor inside lists, tuples and dicts moved to ``device``.

    Anything else (image metas' numbers and strings, ``DataContainer``-free collated batches'
    non-tensor leaves) is returned as it is.

    Example:
        >>> out = to_device({'img': [torch.zeros(1)], 'meta': 'a.jpg'}, 'cpu')
        >>> out['img'][0].device.type, out['meta']
        ('cpu', 'a.jpg')
    """
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list | tuple):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters).

    Example:
        >>> model_device(torch.nn.Linear(1, 1)).type
        'cpu'
    """
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
