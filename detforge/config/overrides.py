"""Overrides (``--cfg-options``, ``CFG_OPTIONS``) merged into a config, with errors naming them.

The rule is mmcv 1.x's ``Config.merge_from_dict``: each dotted key becomes nested dicts
(``'model.neck.num_outs': 6`` → ``{'model': {'neck': {'num_outs': 6}}}``), then the nested
dict is merged into the config: dicts merge, anything else replaces, a digit component indexes
a list (detforge also indexes tuples, giving a new tuple), ``_delete_=True`` replaces a dict.

Refused, each with a :class:`~detforge.errors.ConfigError` that names the option:

* ``_base_`` and ``custom_imports`` (as a key's first component or as a key inside a dict
  value): the merged config is saved into the work dir, and loading that file again would load
  the file or import the modules they name — code planted for later. They belong in a file;
* the names reserved by :class:`~detforge.config.Config` (``filename``, ``text``, ...);
* an empty component (``model..neck``, ``.lr``, ``lr.``);
* a path through something that is neither a dict nor a list (``model.neck.num_outs.x``), a
  list index that is not a number or out of range, and one option setting a value that
  another option goes into (``{'optimizer': None, 'optimizer.lr': 1}``);
* a component config (a dict with ``type``) replaced by anything but a dict, ``None`` or a
  non-empty list of dicts (``model.backbone=pytorch``): mmcv takes it and the build fails far
  away, or not at all (a ``train_cfg`` sampler is only built by some heads).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from detforge.config.config_dict import ConfigDict
from detforge.errors import ConfigError, ConfigKeyError, ConfigTypeError

__all__ = ["FORBIDDEN_OVERRIDE_KEYS", "discarded_overrides", "merge_overrides"]

logger = logging.getLogger("detforge")

#: The dotted options that a later whole-dict option discarded, in the last merge from each
#: source in this process (``'CFG_OPTIONS: model.roi_head.bbox_head.num_classes (by model)'``).
_DISCARDED: list[str] = []

FORBIDDEN_OVERRIDE_KEYS = ("_base_", "custom_imports")
_DELETE_KEY = "_delete_"
_RESERVED = ("filename", "text", "pretty_text")


class _MergeFailure(Exception):
    """Where a merge failed (config path), the error class to raise and what is wrong."""

    def __init__(self, kind: type[ConfigError], path: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path
        self.message = message


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}... ({type(value).__name__})" if len(text) > 60 else text


def _forbidden_inside(value: Any, path: str) -> str | None:
    """The path of a forbidden key anywhere inside ``value``, or ``None``."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key in FORBIDDEN_OVERRIDE_KEYS:
                return _join(path, key)
            found = _forbidden_inside(inner, _join(path, key))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            found = _forbidden_inside(inner, _join(path, index))
            if found:
                return found
    return None


def _check_option(key: Any, value: Any, source: str) -> None:
    if not isinstance(key, str) or not key:
        raise ConfigKeyError(f"{source}: keys must be non-empty strings, got {key!r}")
    parts = key.split(".")
    if "" in parts:
        raise ConfigKeyError(
            f"{source}: {key}: empty component in the key (two dots in a row, or a dot at an end)"
        )
    planted = parts[0] if parts[0] in FORBIDDEN_OVERRIDE_KEYS else _forbidden_inside(value, key)
    if planted:
        raise ConfigKeyError(
            f"{source}: {key}: '{planted.rsplit('.', 1)[-1]}' cannot be set by an override: the "
            "merged config is saved into the work dir, and loading it again would load or "
            "import what it names; put it in a config file"
        )
    if parts[0] in _RESERVED:
        raise ConfigKeyError(f"{source}: {key}: '{parts[0]}' is reserved for the config file")


def _nest(options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Dotted keys → nested dicts (mmcv: a later key replaces an earlier value it meets)."""
    nested: dict[str, Any] = {}
    for full_key, value in options.items():
        node = nested
        *parents, last = full_key.split(".")
        for depth, part in enumerate(parents):
            if part not in node:
                node[part] = {}
            elif not isinstance(node[part], dict):
                prefix = ".".join(parents[: depth + 1])
                raise ConfigKeyError(
                    f"{source}: {full_key}: another option sets {prefix} to "
                    f"{_describe(node[part])}, which has no keys; set one or the other"
                )
            node = node[part]
        node[last] = value
    return nested


def discarded_overrides() -> list[str]:
    """The options discarded by a later whole-dict option in this process's merges, each as
    ``'<source>: <dotted key> (by <key>)'`` (what a class-count error mentions)."""
    return list(_DISCARDED)


def _warn_discarded(options: Mapping[str, Any], source: str) -> None:
    """One warning line naming every dotted option that a later option replaced whole (MMCV
    keeps the later one: ``{'model.a': 1, 'model': dict(b=2)}`` loses ``model.a``)."""
    _DISCARDED[:] = [d for d in _DISCARDED if not d.startswith(f"{source}: ")]
    keys = list(options)
    lost: dict[str, list[str]] = {}
    for i, key in enumerate(keys):
        for later in keys[i + 1 :]:
            if key.startswith(later + "."):
                lost.setdefault(later, []).append(key)
                break
    for later, dotted in lost.items():
        _DISCARDED.extend(f"{source}: {k} (by {later})" for k in dotted)
        value = options[later]
        inner = list(value) if isinstance(value, Mapping) else []
        advice = ", ".join(f"{later}.{k}=..." for k in inner) or f"{later} before them"
        logger.warning(
            "%s: %r, given after %s, replaces them as MMCV does (they are discarded); to keep "
            "them write %s",
            source,
            later,
            ", ".join(dotted),
            advice,
        )


def _replaces(value: Any) -> bool:
    """Whether ``value`` may stand where a component config (a dict with ``type``) was."""
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(v, Mapping) for v in value)
    return value is None or isinstance(value, Mapping)


def _merge(child: Mapping[Any, Any], base: Any, path: str, lists: bool) -> Any:
    """``child`` merged into a shallow copy of the dict, list or tuple ``base``."""
    out: Any = list(base) if isinstance(base, list | tuple) else base.copy()
    for key, value in child.items():
        here = _join(path, key)
        if isinstance(out, list):
            if not (isinstance(key, str) and key.isdigit()):
                raise _MergeFailure(
                    ConfigKeyError,
                    here,
                    f"{path} is a {type(base).__name__} of {len(out)} items: index it with 0 "
                    f"to {len(out) - 1}, not {key!r}",
                )
            index = int(key)
            if index >= len(out):
                raise _MergeFailure(
                    ConfigKeyError,
                    here,
                    f"index {index} is out of range: {path} has {len(out)} items",
                )
            slot: Any = index
        else:
            slot = key
        if isinstance(value, dict):
            exists = slot in out if isinstance(out, dict) else True
            replace = exists and isinstance(out, dict) and value.pop(_DELETE_KEY, False)
            if exists and not replace:
                target = out[slot]
                if not isinstance(target, (dict, list, tuple) if lists else dict):
                    kinds = "a dict or a list" if lists else "a dict"
                    keys = ", ".join(repr(k) for k in value)
                    raise _MergeFailure(
                        ConfigTypeError,
                        here,
                        f"{here} is {_describe(target)}, not {kinds}, so it has no {keys}; "
                        f"set {here} itself (a dict value with {_DELETE_KEY}=True replaces a dict)",
                    )
                out[slot] = _merge(value, target, here, lists)
                continue
            out[slot] = ConfigDict(value)
        else:
            target = out.get(slot) if isinstance(out, dict) else out[slot]
            if isinstance(target, dict) and "type" in target and not _replaces(value):
                raise _MergeFailure(
                    ConfigTypeError,
                    here,
                    f"{here} is a component config (type={target['type']!r}), which "
                    f"{_describe(value)} cannot replace; set its keys ({here}.type=...) or give "
                    "a dict (None removes it)",
                )
            out[slot] = value
    return tuple(out) if isinstance(base, tuple) else out


def merge_overrides(
    cfg_dict: Mapping[str, Any],
    options: Mapping[str, Any],
    source: str = "cfg_options",
    *,
    allow_list_keys: bool = True,
) -> ConfigDict:
    """Return ``cfg_dict`` with the dotted-key ``options`` merged in (inputs are not changed).

    Args:
        cfg_dict: The config's dict.
        options: ``{'a.b.0.c': value, ...}``.
        source: Where the options come from, for error messages (``'--cfg-options'``,
            ``'CFG_OPTIONS'``).
        allow_list_keys: Digit components index lists and tuples (mmcv's ``--cfg-options``);
            ``False`` treats a list like any other value that is not a dict.

    Raises:
        ConfigKeyError: a refused key (see the module docstring), a list index that is not a
            number or out of range, or two options in conflict.
        ConfigTypeError: a key goes through a value that is neither a dict nor a list.

    Example:
        >>> merge_overrides({'m': {'s': [1, 2]}}, {'m.s.1': 5, 'm.t': 'x'})
        {'m': {'s': [1, 5], 't': 'x'}}
        >>> merge_overrides({'m': {'s': 1}}, {'m.s.x': 5}, source='--cfg-options')
        Traceback (most recent call last):
        ...
        detforge.errors.ConfigTypeError: --cfg-options: m.s.x: m.s is 1, not a dict or a list, ...
    """
    for key, value in options.items():
        _check_option(key, value, source)
    _warn_discarded(options, source)
    nested = _nest(copy.deepcopy(dict(options)), source)
    try:
        merged = _merge(nested, ConfigDict(cfg_dict), "", allow_list_keys)
    except _MergeFailure as err:
        named = [k for k in options if k == err.path or k.startswith(err.path + ".")]
        named = named or [k for k in options if err.path.startswith(k + ".")]
        raise err.kind(f"{source}: {', '.join(named) or err.path}: {err.message}") from None
    return ConfigDict(merged)
