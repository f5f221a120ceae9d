"""v2's deprecated ``pretrained=`` backbone argument, shared by the backbones that take it."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from detforge.errors import ConfigKeyError, ConfigTypeError

__all__ = ["pretrained_checkpoint", "pretrained_init_cfg"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def pretrained_init_cfg(name: str, pretrained: str | None, init_cfg: _InitCfg) -> _InitCfg:
    """``init_cfg``, or ``dict(type='Pretrained', checkpoint=pretrained)`` (with a warning).

    Raises:
        ConfigKeyError: both are set.
        ConfigTypeError: ``pretrained`` is neither a str nor ``None``.

    Example:
        >>> pretrained_init_cfg('Net', None, dict(type='Pretrained', checkpoint='a.pth'))
        {'type': 'Pretrained', 'checkpoint': 'a.pth'}
    """
    if init_cfg and pretrained:
        raise ConfigKeyError(f"{name}: init_cfg and pretrained cannot both be set")
    if pretrained is None:
        return init_cfg
    if not isinstance(pretrained, str):
        raise ConfigTypeError(f"{name}: pretrained must be a str or None, got {pretrained!r}")
    warnings.warn(
        f"{name}: pretrained is deprecated, use init_cfg=dict(type='Pretrained', "
        f"checkpoint={pretrained!r})",
        DeprecationWarning,
        stacklevel=4,
    )
    return {"type": "Pretrained", "checkpoint": pretrained}


def pretrained_checkpoint(name: str, init_cfg: Any) -> str:
    """The ``checkpoint`` of a ``Pretrained`` init_cfg (v2's transformer backbones accept
    nothing else).

    Raises:
        ConfigTypeError: ``init_cfg`` is not a dict with a ``checkpoint``.
    """
    if not isinstance(init_cfg, Mapping) or "checkpoint" not in init_cfg:
        raise ConfigTypeError(
            f"{name}: init_cfg must be None or dict(type='Pretrained', checkpoint=...), "
            f"got {init_cfg!r}"
        )
    return str(init_cfg["checkpoint"])
