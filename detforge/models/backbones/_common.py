"""What several v2 backbones share: the ``pretrained=`` rule, freezing, ``norm_eval``, and
:class:`StagedBackbone`, the base of those that run named stages one after another."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.errors import ConfigKeyError, ConfigTypeError
from detforge.models.layers import apply_init_cfg, batch_norms_to_eval

__all__: list[str] = []

InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def backbone_init_cfg(
    name: str, pretrained: str | None, init_cfg: InitCfg, default: InitCfg, stacklevel: int = 3
) -> InitCfg:
    """The ``init_cfg`` a v2 backbone ends up with.

    ``pretrained='x'`` (deprecated, warned) means ``dict(type='Pretrained', checkpoint='x')``;
    otherwise ``init_cfg``, and ``None`` means the class ``default``. ``stacklevel`` points the
    warning at the caller of the backbone's constructor.

    Raises:
        ConfigKeyError: both ``pretrained`` and ``init_cfg`` are set.
        ConfigTypeError: ``pretrained`` is neither a str nor ``None``.

    Example:
        >>> backbone_init_cfg('Net', None, None, dict(type='Kaiming', layer='Conv2d'))
        {'type': 'Kaiming', 'layer': 'Conv2d'}
    """
    if init_cfg and pretrained:
        raise ConfigKeyError(f"{name}: init_cfg and pretrained cannot both be set")
    if pretrained is not None:
        if not isinstance(pretrained, str):
            raise ConfigTypeError(f"{name}: pretrained must be a str or None, got {pretrained!r}")
        warnings.warn(
            f"{name}: pretrained is deprecated, use init_cfg=dict(type='Pretrained', "
            f"checkpoint={pretrained!r})",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return {"type": "Pretrained", "checkpoint": pretrained}
    return default if init_cfg is None else init_cfg


def freeze(modules: Iterable[nn.Module]) -> None:
    """Put ``modules`` in eval mode and stop their parameters' gradients."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


class StagedBackbone(nn.Module):
    """Base of the backbones that run named stages one after another (MobileNetV2, Darknet,
    CSPDarknet), as v2 writes each of them.

    :meth:`init_weights` applies ``init_cfg``; :meth:`run_stages` returns the outputs of the
    stages at ``out_indices``; ``train()`` keeps the frozen stages (``_freeze_stages``) and, with
    ``norm_eval``, every batch norm in eval mode. Subclasses set ``init_cfg``, ``out_indices``
    and ``norm_eval`` and override ``_freeze_stages``.
    """

    init_cfg: InitCfg
    out_indices: tuple[int, ...]
    norm_eval: bool

    def _freeze_stages(self) -> None:
        """Freeze what ``frozen_stages`` names (nothing here)."""

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def run_stages(self, x: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, ...]:
        """Run the sub-modules ``names`` in order; keep the outputs at ``out_indices``."""
        outs = []
        for i, name in enumerate(names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> StagedBackbone:
        """Set training mode, keeping frozen stages (and BN with ``norm_eval``) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self


def pretrained_checkpoint(name: str, init_cfg: Any) -> str:
    """The ``checkpoint`` of a ``Pretrained`` init_cfg (v2's transformer backbones accept
    nothing else).

    Raises:
        ConfigTypeError: ``init_cfg`` is not a dict with a ``checkpoint``.
    """
    if not isinstance(init_cfg, Mapping) or "checkpoint" not in init_cfg:
        raise ConfigTypeError(
            f"{name}: init_cfg must be None or dict(type='Pretrained', checkpoint=...), "
            f"got {init_cfg!r}"
        )
    return str(init_cfg["checkpoint"])
