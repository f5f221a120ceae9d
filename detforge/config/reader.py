"""Read one config file's text into a dict: run a ``.py`` file, parse ``.json``/``.yaml``.

Whatever goes wrong in the file itself is a :class:`~detforge.errors.ConfigError` that names
the file and the line: a syntax error is a :class:`~detforge.errors.ConfigSyntaxError` (also a
``SyntaxError``, with ``filename``/``lineno``), an error raised while a ``.py`` config runs
(``NameError`` of a deleted line, ``TypeError`` of ``data_root = -1`` then ``data_root + '...'``)
is a ``ConfigError`` chained to the original, whose traceback still points into the file.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import os.path as osp
import sys
import traceback
import uuid
from types import FunctionType, ModuleType
from typing import Any

import yaml

from detforge.errors import ConfigError, ConfigSyntaxError, ConfigTypeError

__all__ = ["parse_source"]


class _SourceLoader(importlib.abc.SourceLoader):
    """Runs config source under the config's real path, so tracebacks point at the file."""

    def __init__(self, path: str, source: str) -> None:
        self._path = path
        self._source = source

    def get_filename(self, fullname: str) -> str:
        return self._path

    def get_data(self, path: str | os.PathLike[str]) -> bytes:
        return self._source.encode("utf-8")


def _line_in(exc: BaseException, filename: str) -> int | None:
    """The line of ``filename`` that was running when ``exc`` was raised (innermost)."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return lines[-1] if lines else None


def _run_py(filename: str, source: str) -> dict[str, Any]:
    module_name = f"_detforge_config_{uuid.uuid4().hex}"
    loader = _SourceLoader(filename, source)
    spec = importlib.util.spec_from_file_location(module_name, filename, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except SyntaxError as exc:  # IndentationError and TabError too
        details = (filename, exc.lineno, exc.offset, exc.text)
        raise ConfigSyntaxError(exc.msg, details) from None
    except ConfigError:
        raise
    except Exception as exc:
        line = _line_in(exc, filename)
        where = f"{filename}, line {line}" if line else filename
        raise ConfigError(f"{where}: the config raised {type(exc).__name__}: {exc}") from exc
    finally:
        del sys.modules[module_name]
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("__") and not isinstance(value, ModuleType | FunctionType)
    }


def _line(source: str, number: int | None) -> str:
    lines = source.splitlines()
    return lines[number - 1] if number and 0 < number <= len(lines) else ""


def _load_data(filename: str, source: str) -> Any:
    if osp.splitext(filename)[1] == ".json":
        try:
            return json.loads(source)
        except json.JSONDecodeError as exc:
            details = (filename, exc.lineno, exc.colno, _line(source, exc.lineno))
            raise ConfigSyntaxError(exc.msg, details) from None
    try:
        return yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        message = str(getattr(exc, "problem", None) or exc)
        raise ConfigSyntaxError(message, (filename, line, column, _line(source, line))) from None


def parse_source(filename: str, source: str) -> dict[str, Any]:
    """The top-level names of a config file's (already substituted) ``source``.

    Raises:
        ConfigSyntaxError: the text is not valid Python, JSON or YAML.
        ConfigError: a ``.py`` config raised an error while it ran.
        ConfigTypeError: a JSON/YAML file's top level is not a mapping.
    """
    if osp.splitext(filename)[1] == ".py":
        return _run_py(filename, source)
    data = _load_data(filename, source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigTypeError(f"{filename}: the top level must be a mapping, got {type(data)}")
    return data
