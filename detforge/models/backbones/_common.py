"""Plumbing several v2 backbones share: the ``pretrained=`` rule, freezing, ``norm_eval``."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.errors import ConfigKeyError, ConfigTypeError

__all__: list[str] = []

InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def backbone_init_cfg(
    name: str, pretrained: str | None, init_cfg: InitCfg, default: InitCfg
) -> InitCfg:
    """The ``init_cfg`` a v2 backbone ends up with.

    ``pretrained='x'`` (deprecated, warned) means ``dict(type='Pretrained', checkpoint='x')``;
    otherwise ``init_cfg``, and ``None`` means the class ``default``.

    Raises:
        ConfigKeyError: both ``pretrained`` and ``init_cfg`` are set.
        ConfigTypeError: ``pretrained`` is neither a str nor ``None``.

    Example:
        >>> backbone_init_cfg('Net', None, None, dict(type='Kaiming', layer='Conv2d'))
        {'type': 'Kaiming', 'layer': 'Conv2d'}
    """
    if init_cfg and pretrained:
        raise ConfigKeyError(f"{name}: init_cfg and pretrained cannot both be set")
    if pretrained is not None:
        if not isinstance(pretrained, str):
            raise ConfigTypeError(f"{name}: pretrained must be a str or None, got {pretrained!r}")
        warnings.warn(
            f"{name}: pretrained is deprecated, use init_cfg=dict(type='Pretrained', "
            f"checkpoint={pretrained!r})",
            DeprecationWarning,
            stacklevel=3,
        )
        return {"type": "Pretrained", "checkpoint": pretrained}
    return default if init_cfg is None else init_cfg


def freeze(modules: Iterable[nn.Module]) -> None:
    """Put ``modules`` in eval mode and stop their parameters' gradients."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


def batch_norms_eval(module: nn.Module) -> None:
    """Put every batch-norm layer inside ``module`` in eval mode (v2's ``norm_eval``)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
