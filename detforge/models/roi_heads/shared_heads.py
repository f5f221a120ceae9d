"""``ResLayer`` shared head: one ResNet stage run on pooled RoI features (v2's C4 models).

In the C4 Faster/Mask R-CNN configs the backbone stops after stage 3 (stride 16); RoIs are
pooled from that map at 14x14 and the fourth stage (``layer4``, stride 2) turns them into
``[K, 2048, 7, 7]`` features for the box head (and the mask head). Its keys
(``roi_head.shared_head.layer4.0.conv1.weight``, ...) are those of the ResNet stage, so the
ImageNet ResNet checkpoint initialises it (``init_cfg=dict(type='Pretrained', ...)``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.errors import ConfigKeyError, ConfigTypeError, InvalidArgumentError
from detforge.models.backbones.resnet import ResNet
from detforge.models.layers import ResLayer as _ResLayer
from detforge.models.layers import apply_init_cfg
from detforge.registry import MODELS, Cfg

__all__ = ["ResLayer"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@MODELS.register_module()
class ResLayer(nn.Module):
    """Stage ``stage`` (0-based) of a ResNet of ``depth`` as a RoI head's shared head.

    The stage has ResNet's widths (``planes = 64 * 2**stage``, input
    ``64 * 2**(stage - 1) * expansion`` channels) and blocks, ``layer{stage + 1}`` as its only
    child.

    Args:
        depth: ResNet depth (18, 34, 50, 101, 152).
        stage: Stage index (3 = ``layer4``).
        stride: Stride of the stage's first block.
        dilation: Dilation of its 3x3 convs.
        style: ``'pytorch'`` or ``'caffe'``.
        norm_cfg: Norm layer config.
        norm_eval: Keep ``BatchNorm`` layers in eval mode during training.
        with_cp: Gradient checkpointing of the blocks.
        dcn: Deformable conv config of the 3x3 convs.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: Initialisation (default: Kaiming for convs, 1 for norm weights).

    Example:
        >>> head = ResLayer(depth=50, stage=3, norm_cfg=dict(type='BN', requires_grad=False))
        >>> head.eval()(torch.rand(2, 1024, 14, 14)).shape
        torch.Size([2, 2048, 7, 7])
    """

    def __init__(
        self,
        depth: int,
        stage: int = 3,
        stride: int = 2,
        dilation: int = 1,
        style: str = "pytorch",
        norm_cfg: Cfg = {"type": "BN", "requires_grad": True},  # noqa: B006 (never mutated)
        norm_eval: bool = True,
        with_cp: bool = False,
        dcn: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if depth not in ResNet.arch_settings:
            raise ConfigKeyError(
                f"ResLayer: invalid depth {depth}; choose from {sorted(ResNet.arch_settings)}"
            )
        block, stage_blocks = ResNet.arch_settings[depth]
        if not 0 < stage < len(stage_blocks):
            raise InvalidArgumentError(
                f"ResLayer: stage must be in 1..{len(stage_blocks) - 1}, got {stage}"
            )
        if init_cfg and pretrained:
            raise ConfigKeyError("ResLayer: init_cfg and pretrained cannot both be set")
        if pretrained is not None and not isinstance(pretrained, str):
            raise ConfigTypeError(f"ResLayer: pretrained must be a str or None, got {pretrained!r}")
        expansion: int = getattr(block, "expansion", 1)
        self.stage = stage
        self.norm_eval = norm_eval
        self.norm_cfg = norm_cfg
        planes = 64 * 2**stage
        layer = _ResLayer(
            block,
            64 * 2 ** (stage - 1) * expansion,
            planes,
            stage_blocks[stage],
            stride=stride,
            norm_cfg=norm_cfg,
            block_args={"dilation": dilation, "style": style, "with_cp": with_cp, "dcn": dcn},
        )
        self.add_module(f"layer{stage + 1}", layer)
        if pretrained is not None:
            warnings.warn(
                "ResLayer: pretrained is deprecated, use init_cfg=dict(type='Pretrained', ...)",
                DeprecationWarning,
                stacklevel=2,
            )
            init_cfg = {"type": "Pretrained", "checkpoint": pretrained}
        elif init_cfg is None:
            init_cfg = [
                {"type": "Kaiming", "layer": "Conv2d"},
                {"type": "Constant", "val": 1, "layer": ["_BatchNorm", "GroupNorm"]},
            ]
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """RoI features ``[K, C, h, w]`` -> ``[K, planes * expansion, h / stride, w / stride]``."""
        out: torch.Tensor = getattr(self, f"layer{self.stage + 1}")(x)
        return out

    def train(self, mode: bool = True) -> ResLayer:
        """Set training mode, keeping batch norms in eval mode with ``norm_eval``."""
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
