"""Check an ``init_cfg`` when the model is built, not when ``init_weights`` runs much later.

Every initialiser config is built (cheap, no weights touched), so an unknown ``type``, a key
the initialiser does not take (``std`` for ``Constant``, ``bias_prb``), a bad value
(``bias_prob=2.0``, ``distribution='normall'``) or a ``layer`` that names no module class
(``'Conv2D'``, which would silently initialise nothing) fails with the config path and the
closest name, as the registry does for any other component. ``override`` entries are checked
the same way; that each ``name`` is an attribute of the module is checked when applied.

Example:
    >>> check_init_cfg(dict(type='Normal', layer='Conv2D', std=0.01), 'model.bbox_head.init_cfg')
    Traceback (most recent call last):
    ...
    detforge.errors.ConfigKeyError: model.bbox_head.init_cfg.layer: no module class is ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from detforge.errors import ConfigError, ConfigKeyError, ConfigTypeError
from detforge.models.layers.init import INITIALIZERS, _as_cfg_list
from detforge.registry import build_module
from detforge.utils.suggest import did_you_mean

__all__ = ["check_init_cfg"]


def _module_class_names() -> set[str]:
    """Names of every ``nn.Module`` class defined so far (what ``layer`` is matched against)."""
    names: set[str] = set()
    todo: list[type] = [nn.Module]
    while todo:
        cls = todo.pop()
        if cls.__name__ not in names:
            names.add(cls.__name__)
            todo.extend(cls.__subclasses__())
    return names


def _check_one(cfg: dict[str, Any], path: str) -> None:
    try:
        initializer = build_module(cfg, INITIALIZERS, path=path)
    except ConfigError as exc:
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from None
    layers = getattr(initializer, "layer", [])
    if layers:
        known = _module_class_names()
        for name in layers:
            if name not in known:
                raise ConfigKeyError(
                    f"{path}.layer: no module class is named {name!r}, so this initialiser "
                    f"would initialise nothing{did_you_mean(name, known)}"
                )


def check_init_cfg(init_cfg: Any, path: str = "init_cfg") -> None:
    """Check ``init_cfg`` (a dict, a list of dicts, or ``None``) without a module.

    Args:
        init_cfg: The config as a component receives it.
        path: Its config path for messages (``'model.backbone.init_cfg'``).

    Raises:
        UnknownTypeError: an initialiser ``type`` is not registered.
        UnexpectedKeyError: an initialiser gets a key it does not take.
        ConfigKeyError: a ``layer`` names no module class, an override has no ``name``, or
            has keys besides ``name`` but no ``type``.
        ConfigTypeError: a config or a value has the wrong kind.
        ConfigValueError: a value is out of range (``bias_prob``, ``distribution``, ``mode``).
    """
    if init_cfg is None:
        return
    many = not isinstance(init_cfg, Mapping)
    for index, cfg in enumerate(_as_cfg_list(init_cfg, path)):
        where = f"{path}.{index}" if many else path
        override = cfg.pop("override", None)
        if "type" not in cfg and "checkpoint" in cfg:
            # v2's transformer backbones (PVT, Swin) read init_cfg=dict(checkpoint=...) alone
            cfg["type"] = "Pretrained"
        _check_one(cfg, where)
        if override is None:
            continue
        several = not isinstance(override, Mapping)
        for number, item in enumerate(_as_cfg_list(override, f"{where}.override")):
            spot = f"{where}.override.{number}" if several else f"{where}.override"
            name = item.pop("name", None)
            if not isinstance(name, str) or not name:
                raise ConfigKeyError(f"{spot}: needs 'name', the attribute to initialise")
            if not item:
                continue  # only a name: the parent's initialiser on the whole attribute
            if "type" not in item:
                raise ConfigTypeError(
                    f"{spot}: an override with keys besides 'name' needs a 'type' "
                    f"(got {sorted(item)})"
                )
            _check_one(item, spot)
