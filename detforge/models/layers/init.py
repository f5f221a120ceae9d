"""Weight initialisation: mmcv's init helpers, ``init_cfg`` initialisers and ``initialize``.

``init_cfg`` is a dict or a list of dicts; each names an initialiser:

========================  ===============================================================
``Constant``              ``val``; ``bias``
``Xavier``                ``gain=1``, ``distribution='normal'|'uniform'``; ``bias``
``Normal``                ``mean=0``, ``std=1``; ``bias``
``TruncNormal``           ``mean=0``, ``std=1``, ``a=-2``, ``b=2``; ``bias``
``Uniform``               ``a=0``, ``b=1``; ``bias``
``Kaiming``               ``a=0``, ``mode='fan_out'``, ``nonlinearity='relu'``,
                          ``distribution='normal'``; ``bias``
``Caffe2Xavier``          Kaiming uniform, ``a=1``, ``fan_in``, ``leaky_relu``; ``bias``
``Pretrained``            ``checkpoint``, ``prefix=None``, ``map_location=None``
========================  ===============================================================

Every initialiser but ``Pretrained`` also takes ``bias=0``, ``bias_prob=None`` (sets the bias
to ``bias_init_with_prob(bias_prob)``) and ``layer`` (a class name or list of names: only
sub-modules whose class, or one of its base classes, has that name are initialised; without
``layer`` nothing is, unless ``override`` says otherwise). ``override=dict(name=attr, ...)``
(or a list) initialises the attribute ``attr`` as a whole; an override with only ``name``
reuses its parent's initialiser. This is mmcv 1.x's ``initialize``; class names are matched
against the whole class hierarchy rather than the direct bases only.

:func:`apply_init_cfg` is what mmcv's ``BaseModule.init_weights`` does: apply the module's own
``init_cfg`` and then let each direct child with an ``init_weights`` method initialise itself
(unless the ``init_cfg`` is a single ``Pretrained``, whose weights must not be overwritten).

``Pretrained`` loads through :func:`detforge.utils.checkpoint.load_pretrained` (local files
and cached ``torchvision://``/``open-mmlab://`` names; never a download).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from detforge.errors import ConfigTypeError, ConfigValueError
from detforge.models.layers.weight_init import (
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    kaiming_init,
    normal_init,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from detforge.registry import Registry, build_module
from detforge.utils.checkpoint import load_pretrained

__all__ = [
    "INITIALIZERS",
    "Caffe2XavierInit",
    "ConstantInit",
    "KaimingInit",
    "NormalInit",
    "PretrainedInit",
    "TruncNormalInit",
    "UniformInit",
    "XavierInit",
    "apply_init_cfg",
    "bias_init_with_prob",
    "caffe2_xavier_init",
    "constant_init",
    "initialize",
    "kaiming_init",
    "normal_init",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]

INITIALIZERS = Registry("initializers")


# ------------------------------------------------------------------------ initialisers


def _class_names(module: nn.Module) -> set[str]:
    return {cls.__name__ for cls in type(module).__mro__}


def _check_choice(owner: object, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigValueError(
            f"{type(owner).__name__}: {name} must be one of {', '.join(map(repr, choices))}, "
            f"got {value!r}"
        )


class _LayerInit:
    """Common part of the parametric initialisers: ``bias``, ``bias_prob`` and ``layer``."""

    def __init__(
        self, bias: float = 0, bias_prob: float | None = None, layer: str | list[str] | None = None
    ) -> None:
        name = type(self).__name__
        if isinstance(bias, bool) or not isinstance(bias, int | float):
            raise ConfigTypeError(f"{name}: bias must be a number, got {bias!r}")
        if bias_prob is not None and not isinstance(bias_prob, float):
            raise ConfigTypeError(f"{name}: bias_prob must be a float, got {bias_prob!r}")
        if bias_prob is not None and not 0 < bias_prob < 1:
            raise ConfigValueError(f"{name}: bias_prob must lie in (0, 1), got {bias_prob!r}")
        if layer is None:
            layers: list[str] = []
        elif isinstance(layer, str):
            layers = [layer]
        elif isinstance(layer, list | tuple) and all(isinstance(x, str) for x in layer):
            layers = list(layer)
        else:
            raise ConfigTypeError(f"{name}: layer must be a str or a list of str, got {layer!r}")
        self.bias = bias_init_with_prob(bias_prob) if bias_prob is not None else float(bias)
        self.layer = layers

    def _init_one(self, module: nn.Module) -> None:
        raise NotImplementedError

    def __call__(self, module: nn.Module, wholemodule: bool = False) -> None:
        """Initialise the matching sub-modules of ``module`` (all of them if ``wholemodule``)."""
        wanted = set(self.layer)

        def visit(m: nn.Module) -> None:
            if wholemodule or wanted & _class_names(m):
                self._init_one(m)

        module.apply(visit)


@INITIALIZERS.register_module(name="Constant")
class ConstantInit(_LayerInit):
    """``Constant``: weights ``val``, biases ``bias``."""

    def __init__(
        self,
        val: float,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        self.val = val

    def _init_one(self, module: nn.Module) -> None:
        constant_init(module, self.val, self.bias)


@INITIALIZERS.register_module(name="Xavier")
class XavierInit(_LayerInit):
    """``Xavier``: Glorot normal or uniform weights."""

    def __init__(
        self,
        gain: float = 1,
        distribution: str = "normal",
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        _check_choice(self, "distribution", distribution, ("normal", "uniform"))
        self.gain = gain
        self.distribution = distribution

    def _init_one(self, module: nn.Module) -> None:
        xavier_init(module, self.gain, self.bias, self.distribution)


@INITIALIZERS.register_module(name="Normal")
class NormalInit(_LayerInit):
    """``Normal``: weights from ``N(mean, std²)``."""

    def __init__(
        self,
        mean: float = 0,
        std: float = 1,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        self.mean = mean
        self.std = std

    def _init_one(self, module: nn.Module) -> None:
        normal_init(module, self.mean, self.std, self.bias)


@INITIALIZERS.register_module(name="TruncNormal")
class TruncNormalInit(_LayerInit):
    """``TruncNormal``: weights from ``N(mean, std²)`` truncated to ``[a, b]``."""

    def __init__(
        self,
        mean: float = 0,
        std: float = 1,
        a: float = -2,
        b: float = 2,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        self.mean = mean
        self.std = std
        self.a = a
        self.b = b

    def _init_one(self, module: nn.Module) -> None:
        trunc_normal_init(module, self.mean, self.std, self.a, self.b, self.bias)


@INITIALIZERS.register_module(name="Uniform")
class UniformInit(_LayerInit):
    """``Uniform``: weights from ``U(a, b)``."""

    def __init__(
        self,
        a: float = 0,
        b: float = 1,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        self.a = a
        self.b = b

    def _init_one(self, module: nn.Module) -> None:
        uniform_init(module, self.a, self.b, self.bias)


@INITIALIZERS.register_module(name="Kaiming")
class KaimingInit(_LayerInit):
    """``Kaiming``: He normal or uniform weights."""

    def __init__(
        self,
        a: float = 0,
        mode: str = "fan_out",
        nonlinearity: str = "relu",
        distribution: str = "normal",
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        _check_choice(self, "distribution", distribution, ("normal", "uniform"))
        _check_choice(self, "mode", mode, ("fan_in", "fan_out"))
        self.a = a
        self.mode = mode
        self.nonlinearity = nonlinearity
        self.distribution = distribution

    def _init_one(self, module: nn.Module) -> None:
        kaiming_init(module, self.a, self.mode, self.nonlinearity, self.bias, self.distribution)


@INITIALIZERS.register_module(name="Caffe2Xavier")
class Caffe2XavierInit(_LayerInit):
    """``Caffe2Xavier``: Caffe2's XavierFill (see :func:`caffe2_xavier_init`)."""

    def _init_one(self, module: nn.Module) -> None:
        caffe2_xavier_init(module, self.bias)


@INITIALIZERS.register_module(name="Pretrained")
class PretrainedInit:
    """``Pretrained``: load ``checkpoint`` non-strictly (see
    :func:`~detforge.utils.checkpoint.load_pretrained`).

    Args:
        checkpoint: Path or URL (``torchvision://resnet50``, ``open-mmlab://...``, http(s)).
        prefix: Load only the entries under this prefix (``'backbone.'``), prefix removed.
        map_location: Device to map the tensors to.
    """

    def __init__(
        self, checkpoint: str, prefix: str | None = None, map_location: str | None = None
    ) -> None:
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ConfigTypeError(
                f"PretrainedInit: checkpoint must be a path or URL, got {checkpoint!r}"
            )
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location

    def __call__(self, module: nn.Module, wholemodule: bool = False) -> None:
        load_pretrained(module, self.checkpoint, self.prefix, self.map_location)


# --------------------------------------------------------------------------- initialize


def _as_cfg_list(init_cfg: Any, what: str) -> list[dict[str, Any]]:
    if isinstance(init_cfg, Mapping):
        items: Sequence[Any] = [init_cfg]
    elif isinstance(init_cfg, list | tuple):
        items = init_cfg
    else:
        raise ConfigTypeError(f"{what} must be a dict or a list of dicts, got {init_cfg!r}")
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ConfigTypeError(f"{what} must be a dict or a list of dicts, got {item!r}")
        out.append(copy.deepcopy(dict(item)))
    return out


def _run(module: nn.Module, cfg: Mapping[str, Any], wholemodule: bool = False) -> None:
    initializer = build_module(cfg, INITIALIZERS, path=f"init_cfg of {type(module).__name__}")
    initializer(module, wholemodule=wholemodule)


def _run_override(module: nn.Module, override: Any, parent: Mapping[str, Any]) -> None:
    for item in _as_cfg_list(override, "init_cfg override"):
        name = item.pop("name", None)
        if not isinstance(name, str):
            raise ConfigTypeError(f"init_cfg override {item!r} needs a 'name' (str)")
        if not item:
            item = dict(parent)
        elif "type" not in item:
            raise ConfigTypeError(f"init_cfg override for {name!r} needs a 'type': {item!r}")
        target = getattr(module, name, None)
        if not isinstance(target, nn.Module):
            raise AttributeError(
                f"init_cfg override: {type(module).__name__} has no sub-module {name!r}"
            )
        _run(target, item, wholemodule=True)


def initialize(
    module: nn.Module, init_cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> None:
    """Initialise ``module`` as ``init_cfg`` says (mmcv 1.x ``initialize``).

    Args:
        module: The module to initialise (in place).
        init_cfg: One initialiser config or a list of them, applied in order.

    Raises:
        UnknownTypeError: an initialiser type is unknown.
        ConfigTypeError: a config is malformed (bad ``layer``, override without ``name``).
        AttributeError: an override names a sub-module ``module`` does not have.

    Example:
        >>> import torch
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
        >>> initialize(net, [dict(type='Constant', val=3, layer='Conv2d'),
        ...                  dict(type='Constant', val=0, layer='_BatchNorm')])
        >>> net[0].weight.flatten().tolist(), net[1].weight.tolist()
        ([3.0, 3.0], [0.0, 0.0])
    """
    for cfg in _as_cfg_list(init_cfg, "init_cfg"):
        override = cfg.pop("override", None)
        _run(module, cfg)
        if override is not None:
            cfg.pop("layer", None)
            _run_override(module, override, cfg)


def apply_init_cfg(
    module: nn.Module, init_cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
) -> None:
    """What mmcv's ``BaseModule.init_weights`` does, as a function.

    Applies ``init_cfg`` to ``module`` (if any), then calls ``init_weights()`` on each direct
    child that has one, so children refine their parent's initialisation. A single
    ``Pretrained`` config stops there. Children without ``init_weights`` (plain containers
    such as ``nn.ModuleList``) are not descended into.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 1))
        >>> apply_init_cfg(net, dict(type='Constant', val=2, bias=1, layer='Conv2d'))
        >>> net[0].weight.item(), net[0].bias.item()
        (2.0, 1.0)
    """
    if init_cfg:
        initialize(module, init_cfg)
        if isinstance(init_cfg, Mapping) and init_cfg.get("type") == "Pretrained":
            return
    for child in module.children():
        init_weights = getattr(child, "init_weights", None)
        if callable(init_weights):
            init_weights()
