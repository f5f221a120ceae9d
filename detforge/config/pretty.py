"""Format a config dict as Python source that loads back to an equal dict.

The layout follows the v2 config files: one ``key = value`` statement per top-level key,
``dict(k=v, ...)`` for dicts whose keys are valid keyword names (``{'k': v}`` otherwise), and a
value broken over several lines only when it does not fit in ``width`` characters.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["format_config", "format_value"]

_INDENT = "    "


def _is_kwarg_name(key: Any) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def _inline(value: Any) -> str:
    """Single-line source for ``value``."""
    if isinstance(value, Mapping):
        if all(_is_kwarg_name(k) for k in value):
            return "dict(" + ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) + ")"
        return "{" + ", ".join(f"{_inline(k)}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, tuple):
        if len(value) == 1:
            return f"({_inline(value[0])},)"
        return "(" + ", ".join(_inline(v) for v in value) + ")"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    return repr(value)


def _items(value: Any) -> tuple[str, str, list[tuple[str, Any]]] | None:
    """Split a container into (opening, closing, [(prefix, item)]), or None for a scalar."""
    if isinstance(value, Mapping) and value:
        if all(_is_kwarg_name(k) for k in value):
            return "dict(", ")", [(f"{k}=", v) for k, v in value.items()]
        return "{", "}", [(f"{_inline(k)}: ", v) for k, v in value.items()]
    if isinstance(value, list) and value:
        return "[", "]", [("", v) for v in value]
    if isinstance(value, tuple) and value:
        return "(", ")", [("", v) for v in value]
    return None


def format_value(value: Any, indent: int = 0, width: int = 100, prefix: str = "") -> str:
    """Source for ``value`` placed after ``prefix`` at ``indent`` levels, wrapped to ``width``.

    Example:
        >>> print(format_value(dict(type='BN', requires_grad=True)))
        dict(type='BN', requires_grad=True)
    """
    one_line = _inline(value)
    pad = _INDENT * indent
    parts = _items(value)
    if parts is None or len(pad) + len(prefix) + len(one_line) <= width:
        return one_line
    opening, closing, entries = parts
    lines = [opening]
    for item_prefix, item in entries:
        text = format_value(item, indent + 1, width, item_prefix)
        lines.append(f"{pad}{_INDENT}{item_prefix}{text},")
    lines.append(pad + closing)
    return "\n".join(lines)


def format_config(cfg: Mapping[str, Any], width: int = 100) -> str:
    """Source for a whole config: one ``key = value`` statement per top-level key.

    Raises:
        ValueError: a top-level key cannot be a Python variable name.

    Example:
        >>> print(format_config({'optimizer': dict(type='SGD', lr=0.02)}), end='')
        optimizer = dict(type='SGD', lr=0.02)
    """
    lines = []
    for key, value in cfg.items():
        if not _is_kwarg_name(key):
            raise ValueError(
                f"top-level config key {key!r} is not a valid Python name, so the config "
                "cannot be written as a .py file; dump it to .json or .yaml instead"
            )
        prefix = f"{key} = "
        lines.append(prefix + format_value(value, 0, width, prefix))
    return "\n".join(lines) + "\n"
