"""``SSDVGG``: the VGG backbone of SSD300/512 with MMDetection v2.28's layout.

State-dict keys: ``features.{i}.weight`` / ``.bias`` for the convs of one ``nn.Sequential``
(mmcv's VGG numbering: conv, ReLU per block and a max pool per stage), followed by SSD's
``pool5`` (3x3, stride 1), the dilated ``fc6`` conv and the 1x1 ``fc7`` conv — for VGG-16
``features.31`` and ``features.33``.

Since MMDetection v2.18 the L2 normalisation of ``conv4_3`` and the extra layers live in
:class:`~detforge.models.necks.SSDNeck` (``neck.l2_norm.weight``, ``neck.extra_layers.*``); older
checkpoints with ``backbone.l2_norm`` / ``backbone.extra`` keys need v2's
``tools/model_converters/upgrade_ssd_version.py`` first, as in v2.28.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from types import MappingProxyType
from typing import ClassVar

import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones._common import InitCfg, backbone_init_cfg
from detforge.models.layers import apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["SSDVGG"]

_DEFAULT_INIT: tuple[Cfg, ...] = (
    MappingProxyType({"type": "Kaiming", "layer": "Conv2d"}),
    MappingProxyType({"type": "Constant", "val": 1, "layer": "BatchNorm2d"}),
    MappingProxyType({"type": "Normal", "std": 0.01, "layer": "Linear"}),
)


def _vgg_layers(
    stage_blocks: Sequence[int], ceil_mode: bool, with_last_pool: bool
) -> list[nn.Module]:
    """mmcv's VGG ``features`` (no BN, no dilation): per stage, (3x3 conv, ReLU) x n + pool."""
    layers: list[nn.Module] = []
    in_channels = 3
    for i, num_blocks in enumerate(stage_blocks):
        channels = 64 * 2**i if i < 4 else 512
        for _ in range(num_blocks):
            layers += [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
    if not with_last_pool:
        layers.pop()
    return layers


@MODELS.register_module()
class SSDVGG(nn.Module):
    """VGG backbone for SSD (MMDetection v2 ``SSDVGG``).

    mmcv's VGG ``features`` (``ceil_mode`` pooling, the last pool dropped unless
    ``with_last_pool``), then a 3x3 stride-1 max pool, a 3x3 conv to 1024 channels with
    dilation 6 and a 1x1 conv, each conv followed by ReLU. The outputs are the ``features``
    entries at ``out_feature_indices`` (VGG-16: ``conv4_3``'s ReLU at 22 and ``fc7``'s at 34);
    a single index returns the tensor itself, as in v2.

    Args:
        depth: 11, 13, 16 or 19.
        with_last_pool: Keep VGG's last max pool.
        ceil_mode: ``ceil_mode`` of VGG's max pools.
        out_indices: VGG stage indices (kept for v2 compatibility; ``forward`` returns the
            ``out_feature_indices``).
        out_feature_indices: Indices into ``features`` whose outputs are returned.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: Initialisation config used by :meth:`init_weights` (default Kaiming for
            convs).
        input_size: Deprecated and ignored (v2 warns too).
        l2_norm_scale: Deprecated and ignored: the L2 norm is ``SSDNeck``'s since v2.18.

    Example:
        >>> net = SSDVGG(depth=11, out_feature_indices=(14, 24)).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 512, 8, 8), (1, 1024, 4, 4)]
    """

    arch_settings: ClassVar[dict[int, tuple[int, ...]]] = {
        11: (1, 1, 2, 2, 2),
        13: (2, 2, 2, 2, 2),
        16: (2, 2, 3, 3, 3),
        19: (2, 2, 4, 4, 4),
    }

    def __init__(
        self,
        depth: int,
        with_last_pool: bool = False,
        ceil_mode: bool = True,
        out_indices: Sequence[int] = (3, 4),
        out_feature_indices: Sequence[int] = (22, 34),
        pretrained: str | None = None,
        init_cfg: InitCfg = None,
        input_size: int | None = None,
        l2_norm_scale: float | None = None,
    ) -> None:
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigKeyError(
                f"SSDVGG: invalid depth {depth}; choose from {sorted(self.arch_settings)}"
            )
        self.stage_blocks = self.arch_settings[depth]
        if max(out_indices) > len(self.stage_blocks):
            raise ValueError(f"SSDVGG: out_indices {tuple(out_indices)} must lie in 0..5")
        layers = _vgg_layers(self.stage_blocks, ceil_mode, with_last_pool)
        layers += [
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 1024, kernel_size=1),
            nn.ReLU(inplace=True),
        ]
        if not out_feature_indices or not all(0 <= i < len(layers) for i in out_feature_indices):
            raise ValueError(
                f"SSDVGG: out_feature_indices {tuple(out_feature_indices)} must lie in "
                f"0..{len(layers) - 1} (the features of VGG-{depth})"
            )
        self.features = nn.Sequential(*layers)
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.out_feature_indices = tuple(out_feature_indices)
        self.init_cfg = backbone_init_cfg("SSDVGG", pretrained, init_cfg, list(_DEFAULT_INIT))
        if input_size is not None:
            warnings.warn(
                "SSDVGG: input_size is deprecated and ignored", DeprecationWarning, stacklevel=2
            )
        if l2_norm_scale is not None:
            warnings.warn(
                "SSDVGG: l2_norm_scale is deprecated and ignored; the L2 norm is "
                "SSDNeck(l2_norm_scale=...)'s",
                DeprecationWarning,
                stacklevel=2,
            )

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``Tensor[B, 3, H, W]`` -> the ``out_feature_indices`` outputs (one: the tensor)."""
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.out_feature_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)
