"""``TIMMBackbone``: a ``timm`` model as a backbone (MMClassification 0.x's wrapper).

MMDetection v2's ``configs/timm_example`` import ``mmcls.models`` and name
``type='mmcls.TIMMBackbone'``; detforge registers this class under both ``TIMMBackbone`` and
``mmcls.TIMMBackbone`` on top of the ``timm`` package (``pip install timm``, or the
``detforge[timm]`` extra), without MMClassification.

Weights are never downloaded, and (as with every detforge backbone) they are loaded by
:meth:`TIMMBackbone.init_weights`, not by the constructor, so a model whose weights come from a
detector checkpoint builds without them. ``pretrained=True`` looks for the model's weights in
the local cache folders (``$DETFORGE_HOME/checkpoints/timm/<model_name>.{safetensors,pth,bin}``
or the same name directly in a folder of :func:`~detforge.utils.checkpoint.cache_dirs`), and a
missing file is an error that says where to put it; ``checkpoint_path`` names the file itself.
Either is read safely (``torch.load(weights_only=True)`` or safetensors) and handed to timm as
its pretrained state_dict, so timm's own checkpoint filter and classifier adaptation apply
before ``features_only`` wraps the model (MMClassification's ``checkpoint_path`` failed with
``features_only``; this does not).

The state_dict keys are ``timm_model.`` + timm's keys, as in MMClassification.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from detforge.errors import ConfigTypeError
from detforge.models.layers import NORM_LAYERS, apply_init_cfg
from detforge.registry import MODELS
from detforge.utils.checkpoint import (
    CheckpointError,
    cache_dirs,
    read_checkpoint,
    resolve_checkpoint,
)

__all__ = ["TIMMBackbone", "find_timm_weights", "import_timm"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_SUFFIXES = (".safetensors", ".pth", ".bin")


def import_timm() -> ModuleType:
    """The ``timm`` module.

    Raises:
        ImportError: timm is not installed (the message says how to install it).
    """
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise ImportError(
            "TIMMBackbone needs the timm package, which is not installed: `pip install timm` "
            "(or `pip install 'detforge[timm]'`)"
        ) from None


def find_timm_weights(model_name: str) -> Path:
    """The local weights file of timm model ``model_name`` (see the module docstring).

    Raises:
        CheckpointError: no file found; the message names the folder and file names to use.
    """
    for folder in cache_dirs():
        for place in (folder / "timm", folder):
            for suffix in _SUFFIXES:
                path = place / f"{model_name}{suffix}"
                if path.is_file():
                    return path
    raise CheckpointError(
        f"timm model {model_name!r}: pretrained=True needs its weights as a local file and "
        f"detforge never downloads. Put '{model_name}.safetensors' (or '{model_name}.pth') into "
        f"{cache_dirs()[0] / 'timm'} (or {cache_dirs()[1] / 'timm'}), or pass "
        "checkpoint_path='/path/to/weights'"
    )


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        safetensors_torch = importlib.import_module("safetensors.torch")
        state: dict[str, torch.Tensor] = safetensors_torch.load_file(str(path))
        return state
    return dict(read_checkpoint(path)[1])


@MODELS.register_module(name=["TIMMBackbone", "mmcls.TIMMBackbone"])
class TIMMBackbone(nn.Module):
    """A timm model (``timm.create_model``) whose outputs are returned as a tuple.

    Args:
        model_name: timm model name (``'efficientnet_b1'``, ``'tv_resnet50'``, ...).
        features_only: Return timm's feature pyramid (``out_indices`` picks the levels).
        pretrained: :meth:`init_weights` loads the model's weights from the local cache
            (never downloaded).
        checkpoint_path: A local weights file for :meth:`init_weights` to load instead (a path
            or ``open-mmlab://``/``torchvision://`` name).
        in_channels: Image channels.
        init_cfg: Initialisation config; not applied when weights are loaded.
        **kwargs: Passed to ``timm.create_model`` (e.g. ``out_indices``, ``drop_path_rate``);
            timm rejects the ones the model does not take. ``norm_layer`` may be a detforge norm
            name (``'BN'``, ``'SyncBN'``, ...).

    Raises:
        ImportError: timm is not installed.
        ConfigTypeError: ``pretrained`` is not a bool.

    Example:
        >>> net = TIMMBackbone('resnet18', features_only=True, out_indices=(3, 4))  # doctest: +SKIP
        >>> [f.shape[1] for f in net(torch.rand(1, 3, 64, 64))]  # doctest: +SKIP
        [256, 512]
    """

    def __init__(
        self,
        model_name: str,
        features_only: bool = False,
        pretrained: bool = False,
        checkpoint_path: str = "",
        in_channels: int = 3,
        init_cfg: _InitCfg = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(pretrained, bool):
            raise ConfigTypeError(
                f"TIMMBackbone: pretrained must be True or False, got {pretrained!r} (give a "
                "weights file as checkpoint_path)"
            )
        if isinstance(kwargs.get("norm_layer"), str):
            kwargs["norm_layer"] = NORM_LAYERS.lookup(kwargs["norm_layer"], "norm_layer")
        self.model_name = model_name
        self.pretrained = pretrained
        self.checkpoint_path = checkpoint_path
        self.init_cfg = init_cfg
        self._create_args = dict(
            model_name=model_name, features_only=features_only, in_chans=in_channels, **kwargs
        )
        self.timm_model = self._create(None)
        self.feature_info = getattr(self.timm_model, "feature_info", None)

    def _create(self, weights: dict[str, torch.Tensor] | None) -> nn.Module:
        """The timm model, with ``weights`` as its pretrained state_dict if given."""
        timm = import_timm()
        overlay = {"pretrained_cfg_overlay": {"state_dict": weights, "source": "timm"}}
        model: nn.Module = timm.create_model(
            pretrained=weights is not None,
            **self._create_args,
            **(overlay if weights is not None else {}),
        )
        reset_classifier = getattr(model, "reset_classifier", None)
        if callable(reset_classifier):
            reset_classifier(0, "")
        return model

    def init_weights(self) -> None:
        """Load ``checkpoint_path`` or the cached pretrained weights, else apply ``init_cfg``.

        The weights go through timm's pretrained loader (its checkpoint filter and classifier
        adaptation) in a model built like this one, whose state is then copied here.

        Raises:
            CheckpointError: the weights file is missing (the message says where to put it) or
                unreadable.
        """
        path = None
        if self.checkpoint_path:
            path = resolve_checkpoint(self.checkpoint_path)
        elif self.pretrained:
            path = find_timm_weights(self.model_name)
        if path is None:
            apply_init_cfg(self, self.init_cfg)
            return
        loaded = self._create(_read_weights(path))
        self.timm_model.load_state_dict(loaded.state_dict())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, C, H, W]`` -> the timm model's output(s) as a tuple."""
        features = self.timm_model(x)
        if isinstance(features, list | tuple):
            return tuple(features)
        return (features,)
