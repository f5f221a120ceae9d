"""Key-level differences between two configs (``detforge print-config --diff``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detforge.config.pretty import format_value

__all__ = ["config_diff", "flatten"]

_MISSING = object()


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key → value for every non-dict leaf (lists and tuples are leaves: they replace).

    Example:
        >>> flatten({'a': {'b': 1, 'c': [1, 2]}, 'd': {}})
        {'a.b': 1, 'a.c': [1, 2], 'd': {}}
    """
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_diff(base: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per changed leaf: ``+ key = value``, ``- key = value``, ``~ key: old -> new``.

    Example:
        >>> config_diff({'a': {'b': 1, 'c': 2}}, {'a': {'b': 3}, 'd': 'x'})
        ['~ a.b: 1 -> 3', '- a.c = 2', "+ d = 'x'"]
    """
    old_flat, new_flat = flatten(base), flatten(new)
    lines = []
    for key in list(dict.fromkeys([*old_flat, *new_flat])):
        old = old_flat.get(key, _MISSING)
        value = new_flat.get(key, _MISSING)
        if old is _MISSING:
            lines.append(f"+ {key} = {format_value(value)}")
        elif value is _MISSING:
            lines.append(f"- {key} = {format_value(old)}")
        elif old != value or type(old) is not type(value):
            lines.append(f"~ {key}: {format_value(old)} -> {format_value(value)}")
    return lines
