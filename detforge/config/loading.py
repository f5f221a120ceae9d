"""Load a config the way every detforge command does: file, then environment, then CLI.

Order (later wins): the config file with its ``_base_`` chain → ``${a.b}`` interpolation →
data-root override (``DETFORGE_DATASETS``/``MMDET_DATASETS``) → ``CFG_OPTIONS`` environment
variable → ``--cfg-options``. The result before normalising (:attr:`LoadedConfig.raw`) is what
MMCV/MMDetection would build; :attr:`LoadedConfig.cfg` is normalised to the 2.28 dialect.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detforge.config.compat import normalize_config
from detforge.config.config import Config
from detforge.config.interpolate import replace_cfg_vals, update_data_root
from detforge.config.safe_eval import safe_literal_eval
from detforge.errors import ConfigTypeError

__all__ = ["CFG_OPTIONS_ENV", "LoadedConfig", "cfg_options_from_env", "load_config"]

CFG_OPTIONS_ENV = "CFG_OPTIONS"

logger = logging.getLogger("detforge")


@dataclass
class LoadedConfig:
    """A config as loaded: ``raw`` (as MMCV merges it) and ``cfg`` (normalised)."""

    raw: Config
    cfg: Config
    rewrites: list[str] = field(default_factory=list)


def cfg_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse ``CFG_OPTIONS`` (a Python dict expression) with the safe evaluator.

    Raises:
        UnsafeExpressionError: the text is not a plain literal (nothing is run).
        ConfigTypeError: the value is not a dict with string keys.

    Example:
        >>> cfg_options_from_env({'CFG_OPTIONS': '{"optimizer.lr": 0.005}'})
        {'optimizer.lr': 0.005}
    """
    env = os.environ if environ is None else environ
    text = env.get(CFG_OPTIONS_ENV, "").strip()
    if not text:
        return {}
    value = safe_literal_eval(text, CFG_OPTIONS_ENV)
    if not isinstance(value, dict):
        raise ConfigTypeError(
            f"{CFG_OPTIONS_ENV} must be a dict such as {{'optimizer.lr': 0.01}}, "
            f"got a {type(value).__name__}: {text!r}"
        )
    bad = [k for k in value if not isinstance(k, str) or not k]
    if bad:
        raise ConfigTypeError(f"{CFG_OPTIONS_ENV}: keys must be non-empty strings, got {bad!r}")
    return value


def load_config(
    filename: str | os.PathLike[str],
    cfg_options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load, override and normalise a config file.

    Args:
        filename: The config file (``.py``, ``.json``, ``.yaml``).
        cfg_options: Parsed ``--cfg-options`` (dotted keys), applied last.
        environ: Environment to read ``CFG_OPTIONS`` and the data-root variables from
            (default: ``os.environ``).
    """
    raw = replace_cfg_vals(Config.fromfile(filename))
    update_data_root(raw, environ)
    env_options = cfg_options_from_env(environ)
    if env_options:
        raw.merge_from_dict(env_options, source=CFG_OPTIONS_ENV)
        _override_total_epochs(raw, env_options, CFG_OPTIONS_ENV)
    if cfg_options:
        raw.merge_from_dict(dict(cfg_options), source="--cfg-options")
        _override_total_epochs(raw, cfg_options, "--cfg-options")
    cfg, rewrites = normalize_config(raw)
    return LoadedConfig(raw=raw, cfg=cfg, rewrites=rewrites)


def _override_total_epochs(raw: Config, options: Mapping[str, Any], source: str) -> None:
    """An override of v2.6's ``total_epochs`` wins over the file's ``runner.max_epochs`` (v2.6
    users set the schedule that way), with one warning line; in a file both must agree."""
    runner = raw.get("runner")
    if "total_epochs" not in options or not isinstance(runner, dict):
        return
    total = raw.pop("total_epochs")
    if runner.get("max_epochs") not in (None, total):
        logger.warning(
            "config: %s total_epochs=%s overrides runner.max_epochs=%s (the old spelling; "
            "write runner.max_epochs=%s)",
            source,
            total,
            runner["max_epochs"],
            total,
        )
    runner["max_epochs"] = total
