"""``SSDNeck`` (the extra layers of SSD and SSDLite) and ``L2Norm``, MMDetection v2.28's.

State-dict keys: ``l2_norm.weight`` (with ``l2_norm_scale``) and ``extra_layers.{i}.0`` (1x1
ConvModule) / ``extra_layers.{i}.1`` (3x3 ConvModule, or with ``use_depthwise`` a
DepthwiseSeparableConvModule: ``.depthwise_conv`` / ``.pointwise_conv``). These are the keys of
v2.18+ checkpoints; older SSD checkpoints kept ``backbone.l2_norm`` and ``backbone.extra`` and
need v2's ``upgrade_ssd_version.py`` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.registry import MODELS, Cfg

__all__ = ["L2Norm", "SSDNeck"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_RELU: Cfg = MappingProxyType({"type": "ReLU"})
_DEFAULT_INIT: tuple[Cfg, ...] = (
    MappingProxyType({"type": "Xavier", "distribution": "uniform", "layer": "Conv2d"}),
    MappingProxyType({"type": "Constant", "val": 1, "layer": "BatchNorm2d"}),
)


class L2Norm(nn.Module):
    """Per-position L2 normalisation over channels, times a learnt per-channel ``weight``.

    Computed in float32 (``x / (||x||_2 + eps) * weight``) and cast back to the input dtype.

    Args:
        n_dims: Channels.
        scale: Initial value of ``weight`` (set by the owner's ``init_weights``).
        eps: Added to the norm.

    Example:
        >>> norm = L2Norm(2, scale=20.0)
        >>> _ = norm.weight.data.fill_(norm.scale)
        >>> norm(torch.tensor([[[[3.0]], [[4.0]]]])).flatten().tolist()
        [12.0, 16.0]
    """

    def __init__(self, n_dims: int, scale: float = 20.0, eps: float = 1e-10) -> None:
        super().__init__()
        self.n_dims = n_dims
        self.weight = nn.Parameter(torch.empty(n_dims))
        self.eps = eps
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C, H, W]`` -> the same shape and dtype."""
        x32 = x.float()
        norm = x32.pow(2).sum(1, keepdim=True).sqrt() + self.eps
        return (self.weight.float()[None, :, None, None] * x32 / norm).type_as(x)


@MODELS.register_module()
class SSDNeck(nn.Module):
    """Extra layers that extend a backbone's maps into SSD's pyramid (MMDetection v2).

    The backbone's maps are passed through (the first one L2-normalised when
    ``l2_norm_scale`` is set); each extra level is a 1x1 ConvModule to half its channels and a
    3x3 (``last_kernel_size`` for the last level) ConvModule with ``level_strides[i]`` /
    ``level_paddings[i]``, applied to the previous level.

    Args:
        in_channels: Channels of the backbone maps.
        out_channels: Channels of every output; starts with ``in_channels``.
        level_strides: Stride of each extra level's second conv.
        level_paddings: Padding of each extra level's second conv.
        l2_norm_scale: Initial scale of the L2 norm on the first map, or ``None`` for none.
        last_kernel_size: Kernel size of the last level's second conv.
        use_depthwise: Make the second convs depthwise separable (SSDLite).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        init_cfg: Initialisation config used by :meth:`init_weights` (default Xavier-uniform
            convs, BN weight 1); the L2 norm's weight is set to ``l2_norm_scale`` after it.

    Example:
        >>> neck = SSDNeck((8, 16), (8, 16, 8, 4), level_strides=(2, 2),
        ...                level_paddings=(1, 1), l2_norm_scale=None)
        >>> feats = (torch.rand(1, 8, 8, 8), torch.rand(1, 16, 4, 4))
        >>> [tuple(f.shape) for f in neck(feats)]
        [(1, 8, 8, 8), (1, 16, 4, 4), (1, 8, 2, 2), (1, 4, 1, 1)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        level_strides: Sequence[int],
        level_paddings: Sequence[int],
        l2_norm_scale: float | None = 20.0,
        last_kernel_size: int = 3,
        use_depthwise: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = _RELU,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        _check_levels(in_channels, out_channels, level_strides, level_paddings)
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        if init_cfg is None:
            inits: list[Cfg] = list(_DEFAULT_INIT)
        else:
            inits = [init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg)
        if l2_norm_scale:
            self.l2_norm = L2Norm(in_channels[0], l2_norm_scale)
            # v2 appends this to any init_cfg: the L2 norm starts at its scale
            inits.append(
                {"type": "Constant", "val": l2_norm_scale, "override": {"name": "l2_norm"}}
            )
        self.init_cfg = inits
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        second = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        extra = out_channels[len(in_channels) :]
        self.extra_layers = nn.ModuleList()
        for i, (channels, stride, padding) in enumerate(
            zip(extra, level_strides, level_paddings, strict=True)
        ):
            kernel = last_kernel_size if i == len(extra) - 1 else 3
            self.extra_layers.append(
                nn.Sequential(
                    ConvModule(out_channels[len(in_channels) - 1 + i], channels // 2, 1, **layers),
                    second(
                        channels // 2, channels, kernel, stride=stride, padding=padding, **layers
                    ),
                )
            )

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The backbone maps, then one map per extra level (``len(out_channels)`` in all)."""
        outs = list(inputs)
        if hasattr(self, "l2_norm"):
            outs[0] = self.l2_norm(outs[0])
        feat = outs[-1]
        for layer in self.extra_layers:
            feat = layer(feat)
            outs.append(feat)
        return tuple(outs)


def _check_levels(
    in_channels: Sequence[int],
    out_channels: Sequence[int],
    level_strides: Sequence[int],
    level_paddings: Sequence[int],
) -> None:
    n_extra = len(out_channels) - len(in_channels)
    if n_extra <= 0 or tuple(out_channels[: len(in_channels)]) != tuple(in_channels):
        raise ValueError(
            f"SSDNeck: out_channels {tuple(out_channels)} must start with in_channels "
            f"{tuple(in_channels)} and add at least one level"
        )
    if not len(level_strides) == len(level_paddings) == n_extra:
        raise ValueError(
            f"SSDNeck: level_strides {tuple(level_strides)} and level_paddings "
            f"{tuple(level_paddings)} need one entry per extra level ({n_extra})"
        )
