"""Shared plumbing of the layer builders: check a layer config and call its class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detforge.errors import ConfigKeyError, ConfigTypeError
from detforge.registry import Registry, building_path

__all__: list[str] = []


def _split_cfg(cfg: Any, what: str) -> tuple[Any, dict[str, Any]]:
    """``(type, other keys)`` of a layer config, checked.

    Raises:
        ConfigTypeError: ``cfg`` is not a mapping.
        ConfigKeyError: ``cfg`` has no ``type``.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(f"{what} must be a dict with a 'type' key, got {cfg!r}")
    if "type" not in cfg:
        raise ConfigKeyError(f"{what} {dict(cfg)!r} has no 'type' key")
    args = dict(cfg)
    return args.pop("type"), args


def _resolve(registry: Registry, layer_type: Any, what: str) -> Any:
    """The class named by ``layer_type`` (a registered name or the class itself)."""
    if isinstance(layer_type, str):
        return registry.lookup(layer_type, path=what)
    if isinstance(layer_type, type):
        return layer_type
    raise ConfigTypeError(f"{what}: type must be a str or a class, got {layer_type!r}")


def _call(cls: Any, what: str, cfg: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)``, turning a bad keyword into an error that names the config."""
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        where = building_path()
        prefix = f"{where}: " if where else ""
        raise ConfigTypeError(f"{prefix}{what} {dict(cfg)!r}: {exc}") from exc
