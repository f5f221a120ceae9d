"""``Config``: the mmcv 1.x config language, exactly.

A config file (``.py``, ``.json``, ``.yaml``/``.yml``) is read as follows:

1. the predefined variables ``{{ fileDirname }}``, ``{{ fileBasename }}``,
   ``{{ fileBasenameNoExtension }}`` and ``{{ fileExtname }}`` are replaced in the text;
2. each ``{{ _base_.a.b }}`` becomes a placeholder string, later replaced by the value ``a.b``
   of the merged base configs (any type);
3. a ``.py`` file is run as a module; its globals become keys, except names starting with
   ``__``, modules and functions (so helpers such as ``img_norm_cfg`` are keys too);
4. ``_base_`` (a path or a list of paths, relative to the file) is loaded recursively; the bases
   merge left to right, and a top-level key defined by two bases is an error;
5. the file's own dict is merged over the bases with :func:`merge_into`: dicts merge, anything
   else (lists included) replaces, and ``_delete_=True`` replaces a dict wholesale.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import os.path as osp
import re
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from types import MappingProxyType, ModuleType
from typing import Any, NamedTuple

import yaml

from detforge.config.config_dict import ConfigDict
from detforge.config.pretty import format_config
from detforge.config.reader import parse_source
from detforge.errors import (
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigKeyError,
    ConfigTypeError,
)
from detforge.utils.fileio import atomic_write
from detforge.utils.suggest import did_you_mean

__all__ = [
    "BASE_KEY",
    "DELETE_KEY",
    "PROVIDED_IMPORTS",
    "RESERVED_KEYS",
    "Config",
    "import_modules_from_strings",
    "merge_into",
]

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
DEPRECATION_KEY = "_deprecation_"
RESERVED_KEYS = ("filename", "text", "pretty_text")
_FORMATS = (".py", ".json", ".yaml", ".yml")
_BASE_VAR = re.compile(r"\{\{\s*" + BASE_KEY + r"\.([\w\.]+)\s*\}\}")


def merge_into(a: Mapping[Any, Any], b: Any, allow_list_keys: bool = False) -> Any:
    """Merge child ``a`` into a shallow copy of base ``b`` and return the copy (mmcv's rule).

    Args:
        a: The child (overriding) dict. A ``_delete_`` key in one of its dict values is
            popped from ``a``.
        b: The base dict, or a list when ``allow_list_keys`` and ``a`` has digit keys.
        allow_list_keys: Digit keys of ``a`` index into a list ``b`` (``--cfg-options``).

    Raises:
        ConfigKeyError: a list index is out of range.
        ConfigTypeError: a dict in ``a`` meets a non-dict in ``b`` (set ``_delete_=True``).

    Example:
        >>> merge_into({'a': {'x': 1}}, {'a': {'y': 2}, 'l': [1]})
        {'a': {'y': 2, 'x': 1}, 'l': [1]}
    """
    b = b.copy()
    for key, value in a.items():
        if allow_list_keys and isinstance(b, list) and isinstance(key, str) and key.isdigit():
            index = int(key)
            if index >= len(b):
                raise ConfigKeyError(f"Index {index} exceeds the length of list {b}")
            if isinstance(value, dict):
                b[index] = merge_into(value, b[index], allow_list_keys)
            else:  # mmcv cannot replace a list element by a scalar; detforge can
                b[index] = value
        elif isinstance(value, dict):
            if key in b and not value.pop(DELETE_KEY, False):
                allowed = (dict, list) if allow_list_keys else dict
                if not isinstance(b[key], allowed):
                    raise ConfigTypeError(
                        f"{key}={value} in child config cannot inherit from base because {key} "
                        f"is a dict in the child config but is of type {type(b[key])} in base "
                        f"config. You may set `{DELETE_KEY}=True` to ignore the base config."
                    )
                b[key] = merge_into(value, b[key], allow_list_keys)
            else:
                b[key] = ConfigDict(value)
        else:
            b[key] = value
    return b


# ``custom_imports`` entries that v2 configs use to register third-party models detforge
# implements itself: they are not imported (the package need not be installed; importing it
# would register into its own registries, not detforge's). The value says where the models are.
PROVIDED_IMPORTS: Mapping[str, str] = MappingProxyType(
    {
        # configs/convnext, configs/timm_example, configs/rfnext (ConvNeXt): type='mmcls.ConvNeXt'
        # and 'mmcls.TIMMBackbone' are registered by detforge.models.backbones
        "mmcls.models": "detforge.models.backbones (mmcls.ConvNeXt, mmcls.TIMMBackbone)",
    }
)


def import_modules_from_strings(
    imports: str | list[str], allow_failed_imports: bool = False
) -> list[ModuleType | None]:
    """Import the modules a config lists in ``custom_imports`` so that they can register.

    A module named in :data:`PROVIDED_IMPORTS` is not imported: detforge provides its models
    (``None`` stands in its place in the result). The current directory is searched too (after
    everything else on ``sys.path``), as with v2's ``python tools/train.py`` run from the
    project root (``dist_train.sh`` puts it on ``PYTHONPATH``), so a plug-in next to the
    config's project imports with the ``detforge`` command as well.

    Raises:
        ImportError: a module cannot be imported (unless ``allow_failed_imports``); the
            message lists the ``sys.path`` entries that were searched.

    Example:
        >>> import_modules_from_strings(['mmcls.models'])
        [None]
    """
    names = [imports] if isinstance(imports, str) else imports
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigTypeError(
            f"custom_imports.imports must be a str or a list of str, got {names!r}"
        )
    modules: list[ModuleType | None] = []
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    for name in names:
        if name in PROVIDED_IMPORTS:
            modules.append(None)
            continue
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            if not allow_failed_imports:
                searched = "\n  ".join(p or "(current directory)" for p in sys.path)
                raise ImportError(
                    f"custom_imports: cannot import '{name}': {exc}\nsearched sys.path:\n  "
                    f"{searched}"
                ) from exc
            warnings.warn(f"custom_imports: {name} failed to import and is skipped", stacklevel=2)
            modules.append(None)
    return modules


class _Loaded(NamedTuple):
    cfg: dict[str, Any]
    text: str
    base: dict[str, Any]
    base_text: str


def _substitute_predefined_vars(text: str, filename: str) -> str:
    dirname, basename = osp.split(filename)
    stem, ext = osp.splitext(basename)
    values = {
        "fileDirname": dirname,
        "fileBasename": basename,
        "fileBasenameNoExtension": stem,
        "fileExtname": ext,
    }
    for key, value in values.items():
        pattern = r"\{\{\s*" + key + r"\s*\}\}"
        text = re.sub(pattern, value.replace("\\", "/"), text)
    return text


def _pre_substitute_base_vars(text: str) -> tuple[str, dict[str, str]]:
    mapping: dict[str, str] = {}
    for base_var in sorted(set(_BASE_VAR.findall(text))):
        placeholder = f"_{base_var}_{uuid.uuid4().hex.lower()[:6]}"
        mapping[placeholder] = base_var
        pattern = r"\{\{\s*" + BASE_KEY + r"\." + re.escape(base_var) + r"\s*\}\}"
        text = re.sub(pattern, f'"{placeholder}"', text)
    return text, mapping


def _lookup_base_var(base: Mapping[str, Any], dotted: str, filename: str) -> Any:
    value: Any = base
    for part in dotted.split("."):
        try:
            value = value[int(part)] if isinstance(value, list | tuple) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ConfigKeyError(
                f"{filename}: {{{{ {BASE_KEY}.{dotted} }}}} refers to '{dotted}', "
                "which the base configs do not define"
            ) from None
    return copy.deepcopy(value)


def _substitute_base_vars(
    cfg: Any, mapping: Mapping[str, str], base: Mapping[str, Any], filename: str
) -> Any:
    if isinstance(cfg, str):
        if cfg in mapping:
            return _lookup_base_var(base, mapping[cfg], filename)
        return cfg
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            cfg[key] = _substitute_base_vars(value, mapping, base, filename)
        return cfg
    if isinstance(cfg, list):
        return [_substitute_base_vars(v, mapping, base, filename) for v in cfg]
    if isinstance(cfg, tuple):
        return tuple(_substitute_base_vars(v, mapping, base, filename) for v in cfg)
    return cfg


def _file2dict(
    filename: str, use_predefined_variables: bool = True, chain: tuple[str, ...] = ()
) -> _Loaded:
    filename = osp.abspath(osp.expanduser(filename))
    if not osp.isfile(filename):
        raise ConfigFileNotFoundError(f'file "{filename}" does not exist')
    if osp.splitext(filename)[1] not in _FORMATS:
        raise ConfigFileError(f"Only py/yml/yaml/json type are supported now! Got {filename}")
    if filename in chain:
        cycle = " -> ".join([*chain, filename])
        raise ConfigKeyError(f"_base_ files form a cycle: {cycle}")
    with open(filename, encoding="utf-8") as handle:
        raw_text = handle.read()
    source = (
        _substitute_predefined_vars(raw_text, filename) if use_predefined_variables else raw_text
    )
    source, base_vars = _pre_substitute_base_vars(source)
    cfg = parse_source(filename, source)

    if DEPRECATION_KEY in cfg:
        info = cfg.pop(DEPRECATION_KEY) or {}
        if not isinstance(info, Mapping):
            raise ConfigTypeError(f"{filename}: {DEPRECATION_KEY} must be a dict, got {info!r}")
        message = f"The config file {filename} will be deprecated in the future."
        if "expected" in info:
            message += f" Please use {info['expected']} instead."
        if "reference" in info:
            message += f" More information can be found at {info['reference']}"
        warnings.warn(message, DeprecationWarning, stacklevel=2)

    text = f"{filename}\n{raw_text}"
    if BASE_KEY not in cfg:
        if base_vars:
            raise ConfigKeyError(f"{filename}: uses {{{{ {BASE_KEY}.* }}}} but has no {BASE_KEY}")
        return _Loaded(cfg, text, {}, "")

    base_files = cfg.pop(BASE_KEY)
    if isinstance(base_files, str):
        base_files = [base_files]
    if not isinstance(base_files, list | tuple) or not all(isinstance(f, str) for f in base_files):
        raise ConfigTypeError(f"{filename}: {BASE_KEY} must be a path or a list of paths")
    base: dict[str, Any] = {}
    owner: dict[str, str] = {}
    texts = []
    for base_file in base_files:
        path = osp.join(osp.dirname(filename), base_file)
        if not osp.isfile(path):
            raise ConfigFileNotFoundError(
                f"{filename}: {BASE_KEY} file '{base_file}' not found "
                f"(looked for {osp.abspath(path)})"
            )
        loaded = _file2dict(path, use_predefined_variables, (*chain, filename))
        duplicates = sorted(base.keys() & loaded.cfg.keys())
        if duplicates:
            where = ", ".join(f"'{k}' in {owner[k]} and {base_file}" for k in duplicates)
            raise ConfigKeyError(
                f"Duplicate key is not allowed among bases. Duplicate keys: {set(duplicates)} "
                f"({filename}: {where})"
            )
        for key in loaded.cfg:
            owner[key] = base_file
        base.update(loaded.cfg)
        texts.append(loaded.text)
    cfg = _substitute_base_vars(cfg, base_vars, base, filename)
    try:
        merged = merge_into(cfg, base)
    except ConfigError as exc:
        raise type(exc)(f"{filename}: {exc}") from None
    return _Loaded(merged, "\n".join([*texts, text]), base, "\n".join(texts))


class Config:
    """A loaded config: a :class:`ConfigDict` plus the file name and the source text.

    Attribute and item access go to the dict; dict values assigned are wrapped in
    ``ConfigDict``.

    Example:
        >>> cfg = Config(dict(optimizer=dict(type='SGD', lr=0.02)))
        >>> cfg.merge_from_dict({'optimizer.lr': 0.01})
        >>> cfg.optimizer.lr
        0.01
    """

    def __init__(
        self,
        cfg_dict: Mapping[str, Any] | None = None,
        cfg_text: str | None = None,
        filename: str | os.PathLike[str] | None = None,
    ) -> None:
        if cfg_dict is None:
            cfg_dict = {}
        elif not isinstance(cfg_dict, dict):
            raise ConfigTypeError(f"cfg_dict must be a dict, but got {type(cfg_dict)}")
        for key in cfg_dict:
            if key in RESERVED_KEYS:
                raise ConfigKeyError(f"{key} is reserved for config file")
        name = str(filename) if filename is not None else None
        if cfg_text:
            text = cfg_text
        elif name:
            with open(name, encoding="utf-8") as handle:
                text = handle.read()
        else:
            text = ""
        object.__setattr__(self, "_cfg_dict", ConfigDict(cfg_dict))
        object.__setattr__(self, "_filename", name)
        object.__setattr__(self, "_text", text)

    # ----------------------------------------------------------------- constructors
    @staticmethod
    def fromfile(
        filename: str | os.PathLike[str],
        use_predefined_variables: bool = True,
        import_custom_modules: bool = True,
    ) -> Config:
        """Load a config file with its ``_base_`` chain and run its ``custom_imports``."""
        name = str(filename)
        loaded = _file2dict(name, use_predefined_variables)
        custom = loaded.cfg.get("custom_imports")
        if import_custom_modules and custom:
            if not isinstance(custom, Mapping) or "imports" not in custom:
                raise ConfigTypeError(
                    f"{name}: custom_imports must be "
                    "dict(imports=[...], allow_failed_imports=False)"
                )
            accepted = ("imports", "allow_failed_imports")
            for key in custom:
                if key not in accepted:
                    raise ConfigKeyError(
                        f"{name}: custom_imports: unexpected key {key!r}"
                        f"{did_you_mean(str(key), accepted)} (accepted: {', '.join(accepted)})"
                    )
            import_modules_from_strings(**custom)
        return Config(loaded.cfg, cfg_text=loaded.text, filename=name)

    @staticmethod
    def fromstring(cfg_str: str, file_format: str) -> Config:
        """Load a config from text; ``file_format`` is ``'.py'``, ``'.json'``, ``'.yaml'``..."""
        if file_format not in _FORMATS:
            raise OSError("Only py/yml/yaml/json type are supported now!")
        if file_format != ".py" and "dict(" in cfg_str:
            warnings.warn('Please check "file_format", the file format may be .py', stacklevel=2)
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, "config" + file_format)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(cfg_str)
            return Config.fromfile(path)

    @staticmethod
    def base_of(filename: str | os.PathLike[str]) -> Config:
        """The config that ``filename`` inherits: its ``_base_`` files merged, without itself."""
        loaded = _file2dict(str(filename))
        return Config(copy.deepcopy(loaded.base), cfg_text=loaded.base_text, filename=str(filename))

    # ------------------------------------------------------------------- properties
    @property
    def filename(self) -> str | None:
        return object.__getattribute__(self, "_filename")  # type: ignore[no-any-return]

    @property
    def text(self) -> str:
        return object.__getattribute__(self, "_text")  # type: ignore[no-any-return]

    @property
    def pretty_text(self) -> str:
        """Python source of the merged config; loading it gives an equal dict."""
        return format_config(self.to_dict())

    # ---------------------------------------------------------------------- methods
    def merge_from_dict(
        self,
        options: Mapping[str, Any],
        allow_list_keys: bool = True,
        *,
        source: str = "cfg_options",
    ) -> None:
        """Merge dotted keys into the config (``--cfg-options`` semantics).

        ``'a.b.0.c'`` walks into list (or tuple) element 0 when ``allow_list_keys``; a dict value
        merges into an existing dict, anything else replaces. ``_base_`` and ``custom_imports`` are
        refused (see :mod:`detforge.config.overrides`); errors name the option and ``source``.

        Example:
            >>> cfg = Config(dict(model=dict(backbone=dict(depth=50))))
            >>> cfg.merge_from_dict({'model.backbone.depth': 101})
            >>> cfg.model.backbone.depth
            101
        """
        from detforge.config.overrides import merge_overrides

        merged = merge_overrides(self._cfg_dict, options, source, allow_list_keys=allow_list_keys)
        object.__setattr__(self, "_cfg_dict", merged)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the config as plain dicts, lists and tuples."""
        cfg_dict: ConfigDict = object.__getattribute__(self, "_cfg_dict")
        return cfg_dict.to_dict()

    def dump(self, file: str | os.PathLike[str] | None = None) -> str | None:
        """Return the config as text (no ``file``) or write it atomically to ``file``.

        The format follows the extension (``.py``: :attr:`pretty_text`; ``.json``; ``.yaml``);
        without ``file`` it follows the config's own file name (``.py`` when it has none).
        """
        if file is None:
            ext = osp.splitext(self.filename)[1] if self.filename else ".py"
            return self._serialise(ext)
        atomic_write(file, self._serialise(osp.splitext(str(file))[1]))
        return None

    def _serialise(self, ext: str) -> str:
        if ext == ".py":
            return self.pretty_text
        plain = _lists_for_tuples(self.to_dict())
        if ext == ".json":
            return json.dumps(plain, indent=4) + "\n"
        if ext in (".yaml", ".yml"):
            return str(yaml.safe_dump(plain, sort_keys=False))
        raise OSError(f"cannot dump a config as '{ext}': use .py, .json or .yaml")

    # ---------------------------------------------------------------------- dunders
    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_cfg_dict"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._cfg_dict[name] = value

    def __delattr__(self, name: str) -> None:
        delattr(self._cfg_dict, name)

    def __getitem__(self, name: str) -> Any:
        return self._cfg_dict[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._cfg_dict[name] = value

    def __delitem__(self, name: str) -> None:
        del self._cfg_dict[name]

    def __contains__(self, name: object) -> bool:
        return name in self._cfg_dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._cfg_dict)

    def __len__(self) -> int:
        return len(self._cfg_dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return bool(self._cfg_dict == other._cfg_dict)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Config (path: {self.filename}): {self._cfg_dict!r}"

    def __getstate__(self) -> tuple[Any, ...]:
        return (self._cfg_dict, self.filename, self.text)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        cfg_dict, filename, text = state
        object.__setattr__(self, "_cfg_dict", cfg_dict)
        object.__setattr__(self, "_filename", filename)
        object.__setattr__(self, "_text", text)

    def __copy__(self) -> Config:
        other = Config.__new__(Config)
        other.__setstate__(self.__getstate__())
        return other

    def __deepcopy__(self, memo: dict[int, Any]) -> Config:
        other = Config.__new__(Config)
        memo[id(self)] = other
        other.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return other


def _lists_for_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists_for_tuples(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists_for_tuples(v) for v in value]
    return value
