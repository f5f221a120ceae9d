"""One registry per concept, and :func:`build_module` that turns a config dict into an object.

Registries (``DESIGN.md``): ``MODELS``, ``TASK_UTILS`` (assigners, samplers, coders, prior
generators, IoU calculators), ``DATASETS``, ``TRANSFORMS``, ``HOOKS``, ``OPTIMIZERS``,
``LR_SCHEDULES``. The MMDetection v2 names are aliases of these: ``BACKBONES``,
``NECKS``, ``HEADS``, ``LOSSES``, ``DETECTORS``, ``ROI_EXTRACTORS``, ``SHARED_HEADS`` are
``MODELS``; ``BBOX_ASSIGNERS``, ``BBOX_SAMPLERS``, ``BBOX_CODERS``, ``PRIOR_GENERATORS``,
``ANCHOR_GENERATORS``, ``IOU_CALCULATORS`` are ``TASK_UTILS``; ``PIPELINES`` is ``TRANSFORMS``.
Metrics have no registry: as in v2, a metric is a name (``evaluation = dict(metric='bbox')``)
that the dataset's ``evaluate`` dispatches on (``COCO_ALLOWED_METRICS``,
``CUSTOM_ALLOWED_METRICS``).

A config dict (:data:`Cfg`) ``dict(type=..., **kwargs)`` names a registered class (or function)
by string, or passes the class itself; an object that is already built passes through
:func:`build_module` unchanged, so a component typed ``Cfg | nn.Module`` takes either. Errors
name the config path (``model.rpn_head.anchor_generator``): an unknown ``type`` lists the
closest registered names, an unexpected keyword the closest accepted one (keywords a class
forwards to its base class through ``**kwargs`` are checked against the base's signature).
Nested builds find their own path: a component that calls ``build_module`` on one of its
arguments gets ``<parent path>.<argument name>`` without passing anything.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeAlias, TypeVar

from detforge.errors import (
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    UnexpectedKeyError,
    UnknownTypeError,
)
from detforge.utils.suggest import close_matches, did_you_mean

__all__ = [
    "ANCHOR_GENERATORS",
    "BACKBONES",
    "BBOX_ASSIGNERS",
    "BBOX_CODERS",
    "BBOX_SAMPLERS",
    "DATASETS",
    "DETECTORS",
    "HEADS",
    "HOOKS",
    "IOU_CALCULATORS",
    "LOSSES",
    "LR_SCHEDULES",
    "MODELS",
    "NECKS",
    "OPTIMIZERS",
    "PIPELINES",
    "PRIOR_GENERATORS",
    "ROI_EXTRACTORS",
    "SHARED_HEADS",
    "TASK_UTILS",
    "TRANSFORMS",
    "Cfg",
    "Registry",
    "build_module",
    "building_path",
    "check_cfg_keys",
    "plain_cfg",
]

Cfg: TypeAlias = Mapping[str, Any]
"""A config dict: ``dict(type=NameOrClass, **kwargs)`` for a component, or a plain settings dict
(``train_cfg``, ``test_cfg``). Components take their children as ``Cfg | <built type>``."""

T = TypeVar("T")


def plain_cfg(cfg: Any) -> Any:
    """``cfg`` with every mapping turned into a plain ``dict`` (lists and tuples followed).

    Constant default configs are read-only ``MappingProxyType`` values, which cannot be
    pickled or deep-copied; a component that keeps a config as an attribute (``norm_cfg``,
    ``init_cfg``) keeps this copy, so the model stays picklable (checkpoints, EMA copies).

    Example:
        >>> from types import MappingProxyType
        >>> plain_cfg(MappingProxyType(dict(type='GN', groups=[1, MappingProxyType({})])))
        {'type': 'GN', 'groups': [1, {}]}
    """
    if isinstance(cfg, Mapping):
        return {key: plain_cfg(value) for key, value in cfg.items()}
    if isinstance(cfg, list | tuple):
        return type(cfg)(plain_cfg(value) for value in cfg)
    return cfg


_Obj = Callable[..., Any]

# (path, args) of the builds in progress, innermost last; lets nested builds name their path.
_BUILDING: contextvars.ContextVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
    contextvars.ContextVar("detforge_building", default=())
)


def building_path() -> str | None:
    """The config path of the component being built right now (``'model.neck'``), if any."""
    stack = _BUILDING.get()
    return stack[-1][0] if stack else None


class Registry:
    """A name → class (or function) table for one concept.

    Example:
        >>> TOYS = Registry('toys')
        >>> @TOYS.register_module()
        ... class Ball:
        ...     def __init__(self, size: int = 1) -> None:
        ...         self.size = size
        >>> TOYS.build(dict(type='Ball', size=3)).size
        3
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._modules: dict[str, _Obj] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def module_dict(self) -> dict[str, _Obj]:
        """A copy of the name → object table."""
        return dict(self._modules)

    def names(self) -> list[str]:
        return sorted(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry(name={self._name!r}, items={self.names()})"

    def get(self, key: str) -> _Obj | None:
        """The object registered as ``key``, or ``None``."""
        return self._modules.get(key)

    def lookup(self, key: str, path: str | None = None) -> _Obj:
        """The object registered as ``key``.

        Raises:
            UnknownTypeError: nothing is registered as ``key``; lists the closest names.
        """
        obj = self._modules.get(key)
        if obj is not None:
            return obj
        where = f"{path}: " if path else ""
        hits = close_matches(key, self._modules)
        if hits:
            hint = "did you mean " + " or ".join(repr(h) for h in hits) + "?"
        elif not self._modules:
            hint = "nothing is registered there yet (is the package that defines it imported?)"
        else:
            shown = self.names()[:20]
            more = f" and {len(self._modules) - 20} more" if len(self._modules) > 20 else ""
            hint = "registered names: " + ", ".join(shown) + more
        raise UnknownTypeError(f"{where}type={key!r} is not in the {self._name} registry; {hint}")

    def register_module(
        self,
        name: str | list[str] | type | None = None,
        force: bool = False,
        module: _Obj | None = None,
    ) -> Any:
        """Register a class or function, as a decorator or as a call.

        ``@REG.register_module()``, ``@REG.register_module(name='Alias')``, ``@REG.register_module``
        and ``REG.register_module(module=Cls)`` all work; ``name`` may be a list of aliases.

        Raises:
            ConfigKeyError: the name is taken (unless ``force=True``).
        """
        if inspect.isclass(name) or inspect.isfunction(name):  # bare @register_module
            self._add(name, None, force)
            return name
        if name is not None and not isinstance(name, str | list):
            raise ConfigTypeError(f"name must be None, a str or a list of str, got {type(name)}")
        if module is not None:
            self._add(module, name, force)
            return module

        def decorator(obj: T) -> T:
            self._add(obj, name, force)  # type: ignore[arg-type]
            return obj

        return decorator

    def _add(self, obj: _Obj, name: str | list[str] | None, force: bool) -> None:
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            raise ConfigTypeError(f"only classes and functions can be registered, got {type(obj)}")
        names = [obj.__name__] if name is None else [name] if isinstance(name, str) else name
        if not all(isinstance(key, str) and key for key in names):
            raise ConfigTypeError(f"registered names must be non-empty strings, got {names!r}")
        for key in names:
            if not force and key in self._modules and self._modules[key] is not obj:
                raise ConfigKeyError(
                    f"{key} is already registered in {self._name} "
                    f"(by {self._modules[key].__module__}); pass force=True to replace it"
                )
            self._modules[key] = obj

    def build(
        self,
        cfg: Mapping[str, Any],
        default_args: Mapping[str, Any] | None = None,
        path: str | None = None,
    ) -> Any:
        """Shorthand for ``build_module(cfg, self, default_args, path=path)``."""
        return build_module(cfg, self, default_args, path=path)


_PLAIN_VALUES = (str, bytes, bool, int, float, list, tuple, set)


def _same(value: Any, target: Mapping[str, Any]) -> bool:
    try:
        return isinstance(value, Mapping) and bool(value == target)
    except Exception:  # e.g. arrays inside, whose == is elementwise
        return False


def _copied_from(value: Any, target: Mapping[str, Any]) -> bool:
    """``target`` is ``value`` copied and then extended (``cfg.copy(); cfg.update(...)``)."""
    try:
        return (
            isinstance(value, Mapping)
            and "type" in value
            and all(k in target and bool(target[k] == v) for k, v in value.items())
        )
    except Exception:
        return False


def _find_key(container: Any, target: Mapping[str, Any], depth: int = 3) -> str | None:
    """Where ``target`` sits inside ``container``: by identity, equality, then as a copy."""
    matchers: tuple[Callable[[Any], bool], ...] = (
        lambda v: v is target,
        lambda v: _same(v, target),
        lambda v: _copied_from(v, target),
    )
    for match in matchers:
        found = _search(container, match, depth)
        if found is not None:
            return found
    return None


def _search(container: Any, match: Callable[[Any], bool], depth: int) -> str | None:
    if depth == 0:
        return None
    if isinstance(container, Mapping):
        items: Any = container.items()
    elif isinstance(container, list | tuple):
        items = enumerate(container)
    else:
        return None
    for key, value in items:
        if match(value):
            return str(key)
        inner = _search(value, match, depth - 1)
        if inner is not None:
            return f"{key}.{inner}"
    return None


def _default_path(cfg: Mapping[str, Any]) -> str:
    stack = _BUILDING.get()
    type_name = cfg.get("type")
    label = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "?")
    if not stack:
        return f"<{label}>"
    parent_path, parent_args = stack[-1]
    key = _find_key(parent_args, cfg)
    return f"{parent_path}.{key}" if key is not None else f"{parent_path}.<{label}>"


def _parameters(obj: _Obj) -> list[inspect.Parameter] | None:
    """The keyword parameters ``obj`` accepts, following ``**kwargs`` that a class's
    ``__init__`` forwards to its base classes (``None``: anything goes, e.g. a builtin)."""
    try:
        own = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature; let the call decide
        return None
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own):
        return own
    if not inspect.isclass(obj):
        return None
    # the class's own __init__ takes **kwargs: they go to the next __init__ up the MRO
    owner = next((c for c in obj.__mro__ if "__init__" in vars(c)), None)
    if owner is None or owner.__module__.split(".")[0] in {"torch", "builtins"}:
        return None
    bases = owner.__mro__[1:]
    parent = next((c for c in bases if "__init__" in vars(c)), None)
    if parent is None or parent.__module__.split(".")[0] in {"torch", "builtins"}:
        return None
    inherited = _parameters(parent)
    if inherited is None:
        return None
    named = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
    seen = {p.name for p in named}
    # the parent's parameters count as optional here: the subclass may supply them itself
    extra = [p.replace(default=None) for p in inherited if p.name not in seen]
    return named + extra


def _check_arguments(obj: _Obj, args: Mapping[str, Any], path: str, label: str) -> None:
    params = _parameters(obj)
    if params is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    for key in args:
        if key not in accepted:
            raise UnexpectedKeyError(
                f"{path}: unexpected key {key!r} for {label}{did_you_mean(key, accepted)} "
                f"(accepted: {', '.join(accepted)})"
            )
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in args
    ]
    if missing:
        raise ConfigKeyError(f"{path}: {label} needs {', '.join(repr(m) for m in missing)}")


def build_module(
    cfg: Cfg | Any,
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
    *,
    path: str | None = None,
) -> Any:
    """Build the object that ``cfg`` describes, or pass an already built object through.

    Args:
        cfg: ``dict(type=NameOrClass, **kwargs)``. ``type`` is looked up in ``registry`` when
            it is a string, and used as is when it is a class or function. Anything that is
            not a dict (nor a plain value such as a string or a list) is taken to be the built
            object and returned unchanged; ``default_args`` are then not applied.
        registry: The registry for this concept.
        default_args: Keyword arguments used where ``cfg`` does not set them.
        path: Config path for error messages (e.g. ``'model.neck'``); found automatically for
            builds nested inside another ``build_module`` call.

    Raises:
        UnknownTypeError: ``type`` is not registered (the closest names are listed).
        UnexpectedKeyError: ``cfg`` has a key the constructor does not accept.
        ConfigKeyError: ``type`` or a required argument is missing.

    Example:
        >>> MODELS_ = Registry('models')
        >>> @MODELS_.register_module()
        ... class FPN:
        ...     def __init__(self, in_channels: list[int], out_channels: int) -> None:
        ...         self.in_channels = in_channels
        >>> build_module(dict(type='FPN', in_channels=[256], out_channel=256), MODELS_,
        ...              path='model.neck')
        Traceback (most recent call last):
        ...
        detforge.errors.UnexpectedKeyError: model.neck: unexpected key 'out_channel' for FPN; ...
    """
    if not isinstance(cfg, Mapping):
        if cfg is None or isinstance(cfg, _PLAIN_VALUES):
            raise ConfigTypeError(
                f"{path or registry.name}: expected a config dict, got {type(cfg).__name__} {cfg!r}"
            )
        return cfg
    where = path or _default_path(cfg)
    if "type" not in cfg and (default_args is None or "type" not in default_args):
        raise ConfigKeyError(f"{where}: the config dict has no 'type' key: {dict(cfg)}")
    args = dict(default_args or {})
    args.update(cfg)
    obj_type = args.pop("type")
    if isinstance(obj_type, str):
        obj = registry.lookup(obj_type, where)
        label = obj_type
    elif inspect.isclass(obj_type) or inspect.isfunction(obj_type):
        obj = obj_type
        label = obj_type.__name__
    else:
        raise ConfigTypeError(f"{where}: type must be a str, class or function, got {obj_type!r}")
    _check_arguments(obj, args, where, label)
    token = _BUILDING.set((*_BUILDING.get(), (where, args)))
    try:
        return obj(**args)
    except Exception as exc:
        noted = isinstance(exc, ConfigError) or getattr(exc, "_detforge_noted", False)
        if not noted and hasattr(exc, "add_note"):
            exc.add_note(f"while building {where} (type={label})")
            exc._detforge_noted = True  # type: ignore[attr-defined]
        raise
    finally:
        _BUILDING.reset(token)


def check_cfg_keys(cfg: Cfg | None, accepted: Iterable[str], name: str, owner: object) -> None:
    """Refuse a settings dict (``train_cfg``, ``test_cfg``, ...) with a key nobody reads.

    A component calls this on the settings it was given, so a typo such as
    ``test_cfg.nms_pr`` fails when the model is built instead of running with the default.
    The message names the component's config path (when it is being built from a config),
    the key, the closest accepted keys and all of them.

    Args:
        cfg: The settings (``None`` or empty: nothing to check).
        accepted: The keys the component reads.
        name: What the settings are called there (``'train_cfg'``).
        owner: The component (its class name goes into the message).

    Raises:
        UnexpectedKeyError: ``cfg`` has a key outside ``accepted``.
        ConfigTypeError: ``cfg`` is not a dict.

    Example:
        >>> check_cfg_keys(dict(nms_pr=100), ['nms_pre', 'nms'], 'test_cfg', object())
        Traceback (most recent call last):
        ...
        detforge.errors.UnexpectedKeyError: test_cfg of object: unexpected key 'nms_pr'; did ...
    """
    if not cfg:
        return
    label = f"{name} of {type(owner).__name__}"
    stack = _BUILDING.get()
    where = f"{stack[-1][0]}: {label}" if stack else label
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(f"{where} must be a dict, got {type(cfg).__name__} {cfg!r}")
    allowed = sorted(accepted)
    for key in cfg:
        if key not in allowed:
            raise UnexpectedKeyError(
                f"{where}: unexpected key {key!r}{did_you_mean(str(key), allowed)} "
                f"(accepted: {', '.join(allowed)})"
            )


MODELS = Registry("models")
TASK_UTILS = Registry("task utils")
DATASETS = Registry("datasets")
TRANSFORMS = Registry("transforms")
HOOKS = Registry("hooks")
OPTIMIZERS = Registry("optimizers")
LR_SCHEDULES = Registry("lr schedules")

# MMDetection v2 names: views of the concept registries above.
BACKBONES = NECKS = HEADS = LOSSES = DETECTORS = ROI_EXTRACTORS = SHARED_HEADS = MODELS
BBOX_ASSIGNERS = BBOX_SAMPLERS = BBOX_CODERS = TASK_UTILS
PRIOR_GENERATORS = ANCHOR_GENERATORS = IOU_CALCULATORS = TASK_UTILS
PIPELINES = TRANSFORMS
