"""MMDetection's post-processing of a loaded config: ``${a.b}`` values and the data root.

* ``"${a.b}"`` as a whole string becomes the value at ``a.b`` (any type); inside a longer
  string (``"x${a.b}y"``) it becomes ``str(value)``, and a dict, list or tuple value there is an
  error. Values are read from the config as loaded (references are not chained).
* ``DETFORGE_DATASETS`` (or, for compatibility, ``MMDET_DATASETS``) replaces ``data_root``: every
  string under ``data`` that contains the old root gets the new one, as ``mmdet`` does.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from detforge.config.config import Config
from detforge.config.config_dict import ConfigDict
from detforge.errors import ConfigKeyError, ConfigTypeError
from detforge.utils.suggest import did_you_mean

__all__ = ["DATA_ROOT_ENV_VARS", "replace_cfg_vals", "update_data_root"]

logger = logging.getLogger("detforge")

DATA_ROOT_ENV_VARS = ("DETFORGE_DATASETS", "MMDET_DATASETS")
_REFERENCE = re.compile(r"\$\{[a-zA-Z\d_.]*\}")


def _resolve(cfg: Mapping[str, Any], dotted: str, where: str) -> Any:
    value: Any = cfg
    walked: list[str] = []
    for part in dotted.split("."):
        if isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            keys = [str(k) for k in value] if isinstance(value, Mapping) else []
            parent = ".".join(walked) or "the config"
            raise ConfigKeyError(
                f"${{{dotted}}} in '{where}': {parent} has no key '{part}'"
                + did_you_mean(part, keys)
            )
        walked.append(part)
    return value


def replace_cfg_vals(cfg: Config) -> Config:
    """Return a new ``Config`` with every ``${a.b}`` reference replaced.

    Example:
        >>> cfg = Config(dict(root='data/', ann='${root}ann.json', n=dict(c='${classes}'),
        ...                   classes=('a', 'b')))
        >>> new = replace_cfg_vals(cfg)
        >>> new.ann, new.n.c
        ('data/ann.json', ('a', 'b'))
    """
    source = cfg.to_dict()

    def replace(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: replace(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [replace(v, f"{where}.{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return tuple(replace(v, f"{where}.{i}") for i, v in enumerate(value))
        if not isinstance(value, str):
            return value
        refs = _REFERENCE.findall(value)
        if len(refs) == 1 and refs[0] == value:
            return _resolve(source, value[2:-1], where)
        for ref in refs:
            found = _resolve(source, ref[2:-1], where)
            if isinstance(found, dict | list | tuple):
                raise ConfigTypeError(
                    f"'{where}' = {value!r}: {ref} is a {type(found).__name__}, which cannot be "
                    "embedded in a longer string; use it as the whole value instead"
                )
            value = value.replace(ref, str(found))
        return value

    new = Config(replace(source, ""), cfg_text=cfg.text, filename=cfg.filename)
    if new.get("model_wrapper") is not None:
        new.model = new.pop("model_wrapper")
    return new


def update_data_root(cfg: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """Apply ``DETFORGE_DATASETS``/``MMDET_DATASETS`` to ``cfg`` in place.

    Returns:
        The new data root, or ``None`` when neither variable is set (nothing changes).
    """
    env = os.environ if environ is None else environ
    var = next((name for name in DATA_ROOT_ENV_VARS if env.get(name)), None)
    if var is None:
        return None
    new_root = env[var]
    old_root = cfg.get("data_root")
    if not isinstance(old_root, str) or not old_root:
        logger.warning(
            "%s=%s is set but the config has no data_root; nothing replaced", var, new_root
        )
        return None
    logger.info("%s is set: using %s as data root instead of %s", var, new_root, old_root)

    def update(node: ConfigDict) -> None:
        for key, value in node.items():
            if isinstance(value, ConfigDict):
                update(value)
            elif isinstance(value, str) and old_root in value:
                node[key] = value.replace(old_root, new_root)

    if isinstance(cfg.get("data"), ConfigDict):
        update(cfg.data)
    cfg.data_root = new_root
    return new_root
