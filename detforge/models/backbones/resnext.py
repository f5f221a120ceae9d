"""``ResNeXt``: ResNet with grouped 3x3 convolutions (MMDetection v2 layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from detforge.models.backbones.resnet import TRAINABLE_BN, Bottleneck, ResNet
from detforge.registry import MODELS, Cfg

__all__ = ["ResNeXt"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt backbone: a Bottleneck ResNet whose 3x3 convs have ``groups`` groups.

    Each block is ``floor(planes * base_width / base_channels) * groups`` wide in its 3x3 conv
    (``ResNeXt-101 32x4d``: ``groups=32, base_width=4`` → 128 channels in the first stage).
    Keys are those of ResNet (``layer1.0.conv2.weight`` has ``width / groups`` input channels).

    Args:
        groups: Cardinality of the grouped convolutions.
        base_width: Width of one group at ``base_channels``.
        Other arguments: as :class:`~detforge.models.backbones.ResNet` (depth 50, 101 or 152).

    Example:
        >>> net = ResNeXt(depth=50, groups=4, base_width=4, base_channels=16, num_stages=1,
        ...               strides=(1,), dilations=(1,), out_indices=(0,))
        >>> tuple(net.layer1[0].conv2.weight.shape)
        (16, 4, 3, 3)
    """

    arch_settings: ClassVar[dict[int, tuple[type[nn.Module], tuple[int, ...]]]] = {
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(
        self,
        depth: int,
        groups: int = 1,
        base_width: int = 4,
        in_channels: int = 3,
        stem_channels: int | None = None,
        base_channels: int = 64,
        num_stages: int = 4,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = "pytorch",
        deep_stem: bool = False,
        avg_down: bool = False,
        frozen_stages: int = -1,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = TRAINABLE_BN,
        norm_eval: bool = True,
        dcn: Cfg | None = None,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        plugins: Any = None,
        with_cp: bool = False,
        zero_init_residual: bool = True,
        pretrained: str | None = None,
        init_cfg: _InitCfg = None,
    ) -> None:
        # Read by _block_args() while ResNet.__init__ builds the stages.
        self.groups = groups
        self.base_width = base_width
        super().__init__(
            depth,
            in_channels=in_channels,
            stem_channels=stem_channels,
            base_channels=base_channels,
            num_stages=num_stages,
            strides=strides,
            dilations=dilations,
            out_indices=out_indices,
            style=style,
            deep_stem=deep_stem,
            avg_down=avg_down,
            frozen_stages=frozen_stages,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            norm_eval=norm_eval,
            dcn=dcn,
            stage_with_dcn=stage_with_dcn,
            plugins=plugins,
            with_cp=with_cp,
            zero_init_residual=zero_init_residual,
            pretrained=pretrained,
            init_cfg=init_cfg,
        )

    def _block_args(self, stage: int) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "base_width": self.base_width,
            "base_channels": self.base_channels,
        }
