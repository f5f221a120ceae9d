"""``NASFCOSHead``: the searched FCOS head of NAS-FCOS (Wang et al. 2020), MMDetection v2.28.

FCOS's head, targets and losses with the searched towers: "dconv3x3, conv3x3, dconv3x3,
conv1x1" (the deformable convs modulated, two offset groups, with a bias even before GN), the
same structure for classification and regression. Default initialisation: Caffe2Xavier for the
tower convs, N(0, 0.01) for the predictors and the 0.01 prior as ``conv_cls``'s bias.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from detforge.models.dense_heads.fcos_head import FCOSHead
from detforge.models.layers import ConvModule
from detforge.models.layers.scale import Scale
from detforge.registry import MODELS

__all__ = ["NASFCOSHead"]

#: (conv_cfg, kernel size, padding, bias) of the searched tower, in order
_ARCH: tuple[tuple[dict[str, Any], int, int, bool], ...] = (
    (dict(type="DCNv2", deform_groups=2), 3, 1, True),
    (dict(type="Conv"), 3, 1, False),
    (dict(type="DCNv2", deform_groups=2), 3, 1, True),
    (dict(type="Conv"), 1, 0, False),
)


def _default_init_cfg() -> list[dict[str, Any]]:
    return [
        dict(type="Caffe2Xavier", layer=["ConvModule", "Conv2d"]),
        dict(
            type="Normal",
            std=0.01,
            override=[
                dict(name="conv_reg"),
                dict(name="conv_centerness"),
                dict(name="conv_cls", type="Normal", std=0.01, bias_prob=0.01),
            ],
        ),
    ]


@MODELS.register_module()
class NASFCOSHead(FCOSHead):
    """NAS-FCOS head: :class:`FCOSHead` with the searched towers (see the module docstring);
    the arguments of :class:`FCOSHead` (``stacked_convs`` is ignored, as in v2)."""

    def __init__(
        self, num_classes: int, in_channels: int, init_cfg: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            init_cfg=_default_init_cfg() if init_cfg is None else init_cfg,
            **kwargs,
        )

    def _tower(self) -> nn.Sequential:
        return nn.Sequential(
            *(
                ConvModule(
                    self.in_channels if i == 0 else self.feat_channels,
                    self.feat_channels,
                    kernel,
                    padding=padding,
                    norm_cfg=self.norm_cfg,
                    bias=bias,
                    conv_cfg=dict(conv_cfg),
                )
                for i, (conv_cfg, kernel, padding, bias) in enumerate(_ARCH)
            )
        )

    def _init_layers(self) -> None:
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])
