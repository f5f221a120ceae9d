"""``Darknet`` (YOLOv3's Darknet-53) with MMDetection v2's layout and defaults.

State-dict keys: ``conv1`` and ``conv_res_block{i}.conv`` / ``.res{j}.conv1`` / ``.res{j}.conv2``
(ConvModules: ``.conv`` + ``.bn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones._common import InitCfg, StagedBackbone, backbone_init_cfg, freeze
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["Darknet", "ResBlock"]

_BN: Cfg = MappingProxyType({"type": "BN", "requires_grad": True})
_LEAKY: Cfg = MappingProxyType({"type": "LeakyReLU", "negative_slope": 0.1})
_DEFAULT_INIT: tuple[Cfg, ...] = (
    MappingProxyType({"type": "Kaiming", "layer": "Conv2d"}),
    MappingProxyType({"type": "Constant", "val": 1, "layer": ["_BatchNorm", "GroupNorm"]}),
)


class ResBlock(nn.Module):
    """``x + conv2(conv1(x))``: a 1x1 conv to half the channels, a 3x3 conv back.

    Example:
        >>> ResBlock(8)(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _LEAKY,
        init_cfg: InitCfg = None,
    ) -> None:
        super().__init__()
        if in_channels % 2:
            raise ValueError(f"ResBlock: in_channels must be even, got {in_channels}")
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        self.init_cfg = init_cfg
        self.conv1 = ConvModule(in_channels, in_channels // 2, 1, **layers)
        self.conv2 = ConvModule(in_channels // 2, in_channels, 3, padding=1, **layers)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C, H, W]`` -> ``Tensor[B, C, H, W]``."""
        return self.conv2(self.conv1(x)) + x


@MODELS.register_module()
class Darknet(StagedBackbone):
    """Darknet backbone (MMDetection v2 ``Darknet``; depth 53).

    A 3x3 conv (``conv1``, 32 channels) and five blocks ``conv_res_block{i}``, each a stride-2
    3x3 conv and 1, 2, 8, 8, 4 :class:`ResBlock` s (64 … 1024 channels). Output index 0 is
    ``conv1``, ``i`` is ``conv_res_block{i}`` (stride ``2**i``).

    Args:
        depth: Only 53.
        out_indices: Outputs returned.
        frozen_stages: The first ``frozen_stages`` entries of ``conv1, conv_res_block1, ...``
            get no gradients and stay in eval mode (v2 counts ``conv1`` as stage 1 here).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config (LeakyReLU 0.1).
        norm_eval: Keep batch-norm layers in eval mode during training.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: Initialisation config used by :meth:`init_weights`.

    Example:
        >>> net = Darknet(out_indices=(3, 4, 5)).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 256, 8, 8), (1, 512, 4, 4), (1, 1024, 2, 2)]
    """

    arch_settings: ClassVar[dict[int, tuple[tuple[int, ...], tuple[tuple[int, int], ...]]]] = {
        53: ((1, 2, 8, 8, 4), ((32, 64), (64, 128), (128, 256), (256, 512), (512, 1024)))
    }

    def __init__(
        self,
        depth: int = 53,
        out_indices: Sequence[int] = (3, 4, 5),
        frozen_stages: int = -1,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = _BN,
        act_cfg: Cfg = _LEAKY,
        norm_eval: bool = True,
        pretrained: str | None = None,
        init_cfg: InitCfg = None,
    ) -> None:
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigKeyError(
                f"Darknet: invalid depth {depth}; choose from {sorted(self.arch_settings)}"
            )
        self.init_cfg = backbone_init_cfg("Darknet", pretrained, init_cfg, list(_DEFAULT_INIT))
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.layers, self.channels = self.arch_settings[depth]
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}

        self.conv1 = ConvModule(3, 32, 3, padding=1, **layers)
        self.cr_blocks = ["conv1"]
        for i, num_res in enumerate(self.layers):
            cin, cout = self.channels[i]
            block = nn.Sequential()
            block.add_module("conv", ConvModule(cin, cout, 3, stride=2, padding=1, **layers))
            for j in range(num_res):
                block.add_module(f"res{j}", ResBlock(cout, **layers))
            self.add_module(f"conv_res_block{i + 1}", block)
            self.cr_blocks.append(f"conv_res_block{i + 1}")
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        freeze(getattr(self, name) for name in self.cr_blocks[: max(self.frozen_stages, 0)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, 3, H, W]`` -> one feature map per ``out_indices`` entry."""
        return self.run_stages(x, self.cr_blocks)
