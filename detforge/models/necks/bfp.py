"""``BFP``: the Balanced Feature Pyramid of Libra R-CNN (MMDetection v2 neck, same keys)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import ConvModule, NonLocal2d, apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["BFP"]

_XAVIER: Cfg = MappingProxyType(dict(type="Xavier", layer="Conv2d", distribution="uniform"))
_REFINE_TYPES = (None, "conv", "non_local")


@MODELS.register_module()
class BFP(nn.Module):
    """Balanced Feature Pyramid: gather all levels into one map, refine it, scatter it back.

    Every level is resized to level ``refine_level``'s size (adaptive max pooling for the
    finer levels, nearest interpolation for the coarser ones) and averaged; the average is
    optionally refined (``refine``: a 3x3 ``ConvModule`` or a :class:`NonLocal2d` with
    ``reduction=1`` and no scaling); each output level is its input plus the refined map
    resized back (nearest interpolation up, adaptive max pooling down). In Libra R-CNN it
    follows an FPN (``neck=[FPN, BFP]``).

    Args:
        in_channels: Channels of every level.
        num_levels: Number of levels.
        refine_level: Level whose size the maps are gathered at.
        refine_type: ``None``, ``'conv'`` or ``'non_local'``.
        conv_cfg: Conv config of the refine block.
        norm_cfg: Norm config of the refine block.
        init_cfg: Default Xavier-uniform for every ``Conv2d`` (the non-local block then
            re-initialises itself).

    Example:
        >>> bfp = BFP(4, 3, refine_level=1, refine_type='non_local')
        >>> feats = [torch.rand(1, 4, 8 // 2**i, 8 // 2**i) for i in range(3)]
        >>> [tuple(o.shape) for o in bfp(feats)]
        [(1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2)]
    """

    def __init__(
        self,
        in_channels: int,
        num_levels: int,
        refine_level: int = 2,
        refine_type: str | None = None,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        init_cfg: Cfg | Sequence[Cfg] | None = None,
    ) -> None:
        super().__init__()
        if refine_type not in _REFINE_TYPES:
            raise ValueError(
                f"BFP: refine_type must be one of {_REFINE_TYPES}, got {refine_type!r}"
            )
        if not 0 <= refine_level < num_levels:
            raise ValueError(f"BFP: refine_level={refine_level} must lie in 0..{num_levels - 1}")
        self.in_channels = in_channels
        self.num_levels = num_levels
        self.refine_level = refine_level
        self.refine_type = refine_type
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.init_cfg = _XAVIER if init_cfg is None else init_cfg
        if refine_type == "conv":
            self.refine: nn.Module = ConvModule(
                in_channels, in_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg
            )
        elif refine_type == "non_local":
            self.refine = NonLocal2d(
                in_channels, reduction=1, use_scale=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg
            )

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``num_levels`` maps ``Tensor[B, C, H_i, W_i]`` -> the same shapes, balanced."""
        if len(inputs) != self.num_levels:
            raise ValueError(f"BFP: got {len(inputs)} input levels, num_levels={self.num_levels}")
        size = inputs[self.refine_level].shape[2:]
        gathered = [
            F.adaptive_max_pool2d(x, size) if i < self.refine_level
            else F.interpolate(x, size=size, mode="nearest")
            for i, x in enumerate(inputs)
        ]  # fmt: skip
        bsf = sum(gathered[1:], gathered[0]) / len(gathered)
        if self.refine_type is not None:
            bsf = self.refine(bsf)
        outs = []
        for i, x in enumerate(inputs):
            if i < self.refine_level:
                residual = F.interpolate(bsf, size=x.shape[2:], mode="nearest")
            else:
                residual = F.adaptive_max_pool2d(bsf, x.shape[2:])
            outs.append(residual + x)
        return tuple(outs)
