"""v2-style builders: ``build_detector``, ``build_backbone``, ``build_neck``, ``build_head``,
``build_loss`` (all ``build_module`` on ``MODELS`` with a config path for errors).

:func:`build_detector` is where a whole ``cfg.model`` is built, so it is also where a config
mistake must surface as a :class:`~detforge.errors.ConfigError` naming the config path:

* before building, :func:`check_model_cfg` checks what components only read much later: every
  ``nms`` dict (:func:`detforge.ops.nms.check_nms_cfg`), every ``init_cfg``
  (:func:`~detforge.models.layers.init_check.check_init_cfg`), and that ``train_cfg`` and
  ``test_cfg`` are dicts;
* while building, an error a wrong value provokes inside a component (``TypeError``,
  ``ValueError``, ``KeyError``, ...) becomes the matching ``Config*Error`` that names the
  component being built (``model.neck (FPN): ...``), chained to the original.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from detforge.errors import (
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    ConfigValueError,
)
from detforge.models.layers.init_check import check_init_cfg
from detforge.ops.nms import check_nms_cfg
from detforge.registry import (
    BACKBONES,
    DETECTORS,
    HEADS,
    LOSSES,
    MODELS,
    NECKS,
    ROI_EXTRACTORS,
    SHARED_HEADS,
    build_module,
)

__all__ = [
    "BACKBONES",
    "DETECTORS",
    "HEADS",
    "LOSSES",
    "MODELS",
    "NECKS",
    "ROI_EXTRACTORS",
    "SHARED_HEADS",
    "build_backbone",
    "build_detector",
    "build_head",
    "build_loss",
    "build_neck",
    "build_roi_extractor",
    "build_shared_head",
    "check_model_cfg",
]

# Raised inside a component by a value of the wrong kind or range (and not by a missing file,
# memory or the like, which pass through unchanged).
_VALUE_MISTAKES = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    LookupError,
    RuntimeError,
    TypeError,
    ValueError,
)
_BUILDING_NOTE = re.compile(r"^while building (\S+) \(type=(.*)\)$")


def check_model_cfg(cfg: Mapping[str, Any], path: str = "model") -> None:
    """Check the parts of a model config that components only read after the build.

    Raises:
        ConfigTypeError: ``train_cfg``/``test_cfg`` is not a dict (or ``None``).
        ConfigError: an ``nms`` or ``init_cfg`` dict is wrong (see :func:`check_nms_cfg`
            and :func:`check_init_cfg`); the message names its config path.

    Example:
        >>> check_model_cfg(dict(type='RetinaNet', test_cfg=dict(nms=dict(iou_thr=0.5))))
        >>> check_model_cfg(dict(type='RetinaNet', test_cfg='abc'))
        Traceback (most recent call last):
        ...
        detforge.errors.ConfigTypeError: model.test_cfg: expected a dict (or None), got 'abc'
    """
    for key in ("train_cfg", "test_cfg"):
        value = cfg.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise ConfigTypeError(f"{path}.{key}: expected a dict (or None), got {value!r}")
    _walk(cfg, path)


def _walk(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            here = f"{path}.{key}"
            if key == "nms":
                check_nms_cfg(inner, here)
            elif key == "init_cfg":
                check_init_cfg(inner, here)
            else:
                _walk(inner, here)
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _walk(inner, f"{path}.{index}")


def _as_config_error(exc: BaseException, path: str) -> ConfigError:
    """``exc`` from inside a component as a ``Config*Error`` naming the innermost build."""
    where = path
    for note in getattr(exc, "__notes__", []):
        match = _BUILDING_NOTE.match(note)
        if match:
            where = f"{match.group(1)} ({match.group(2)})"
            break
    kind: type[ConfigError] = ConfigError
    if isinstance(exc, TypeError):
        kind = ConfigTypeError
    elif isinstance(exc, ValueError):
        kind = ConfigValueError
    elif isinstance(exc, KeyError):
        kind = ConfigKeyError
    detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return kind(f"{where}: {type(exc).__name__}: {detail}")


def build_detector(
    cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any] | None = None,
    test_cfg: Mapping[str, Any] | None = None,
) -> Any:
    """Build a detector from ``cfg.model``.

    ``train_cfg``/``test_cfg`` given here (the v2.8 layout) must not also be in ``cfg``; the
    config normaliser moves them into the model already, so this is only for old call sites.

    Raises:
        ConfigError: the config is wrong; the message names the config path (see the module
            docstring). Other errors (a checkpoint that cannot be read, ...) pass unchanged.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(f"model: expected a config dict, got {cfg!r}")
    args = dict(cfg)
    for name, value in (("train_cfg", train_cfg), ("test_cfg", test_cfg)):
        if value is not None:
            if args.get(name) is not None:
                raise ConfigValueError(f"{name} specified in both outer field and model field")
            args[name] = value
    check_model_cfg(args, "model")
    try:
        return build_module(args, MODELS, path="model")
    except ConfigError:
        raise
    except _VALUE_MISTAKES as exc:
        raise _as_config_error(exc, "model") from exc


def build_backbone(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS, path="model.backbone")


def build_neck(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS, path="model.neck")


def build_head(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS)


def build_loss(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS)


def build_roi_extractor(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS)


def build_shared_head(cfg: Mapping[str, Any]) -> Any:
    return build_module(cfg, MODELS)
