"""``ConfigDict``: a dict with attribute access, as mmcv 1.x's (an ``addict.Dict``).

Semantics kept from mmcv/addict:

* nested ``dict`` values, also inside lists and tuples, become ``ConfigDict`` on construction
  and on assignment;
* ``cfg.key`` reads ``cfg['key']``; a missing key raises ``AttributeError`` for attribute
  access and ``KeyError`` for item access (no auto-vivification);
* ``update()`` merges recursively (dict into dict), like addict's;
* ``to_dict()`` returns plain ``dict``/``list``/``tuple`` containers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from detforge.utils.suggest import did_you_mean

__all__ = ["ConfigDict"]


def _hook(value: Any) -> Any:
    """Convert dicts (also inside lists/tuples) into ``ConfigDict``; leave other values alone."""
    if isinstance(value, ConfigDict):
        return value
    if isinstance(value, dict):
        return ConfigDict(value)
    if isinstance(value, list):
        return [_hook(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):  # keep namedtuples intact
        return tuple(_hook(v) for v in value)
    return value


def _unhook(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unhook(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unhook(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_unhook(v) for v in value)
    return value


class ConfigDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose keys can also be read and written as attributes.

    Example:
        >>> cfg = ConfigDict(model=dict(type='RetinaNet', neck=dict(num_outs=5)))
        >>> cfg.model.neck.num_outs
        5
        >>> cfg.model.neck.num_ins
        Traceback (most recent call last):
        ...
        AttributeError: 'ConfigDict' object has no attribute 'num_ins'; did you mean 'num_outs'?
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        for arg in args:  # addict skips empty/None positional arguments
            if arg:
                for key, value in dict(arg).items():
                    self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _hook(value))

    def __missing__(self, key: Any) -> Any:
        raise KeyError(key)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            hint = did_you_mean(name, [k for k in self if isinstance(k, str)])
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}'{hint}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(type(self), name):
            raise AttributeError(f"'{type(self).__name__}' object attribute '{name}' is read-only")
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> Iterable[str]:
        return list(super().__dir__()) + [k for k in self if isinstance(k, str)]

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Merge recursively: a dict value merges into an existing dict value (addict's rule)."""
        other: dict[Any, Any] = {}
        if args:
            if len(args) > 1:
                raise TypeError(f"update expected at most 1 positional argument, got {len(args)}")
            other.update(args[0])
        other.update(kwargs)
        for key, value in other.items():
            current = self.get(key)
            if isinstance(current, ConfigDict) and isinstance(value, Mapping):
                current.update(value)
            else:
                self[key] = value

    def __ior__(self, other: Any) -> ConfigDict:
        for key, value in dict(other).items():
            self[key] = value
        return self

    def __or__(self, other: Any) -> ConfigDict:
        new = self.copy()
        new |= other
        return new

    def copy(self) -> ConfigDict:
        """Shallow copy (a ``ConfigDict``, not a ``dict``)."""
        return copy.copy(self)

    def __copy__(self) -> ConfigDict:
        new = ConfigDict()
        dict.update(new, self)
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> ConfigDict:
        new = ConfigDict()
        memo[id(self)] = new
        for key, value in self.items():
            dict.__setitem__(new, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigDict, (), None, None, iter(self.items()))

    def to_dict(self) -> dict[Any, Any]:
        """Return a deep copy made of plain ``dict``, ``list`` and ``tuple`` containers."""
        result: dict[Any, Any] = _unhook(self)
        return result
