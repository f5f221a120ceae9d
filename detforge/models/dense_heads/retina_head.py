"""``RetinaHead``: RetinaNet's classification and box subnets (v2)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.base_dense_head import conv_tower, prior_init_cfg
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = ["RetinaHead", "retina_predictors"]

_RETINA_ANCHORS: Cfg = MappingProxyType(
    dict(
        type="AnchorGenerator",
        octave_base_scale=4,
        scales_per_octave=3,
        ratios=[0.5, 1.0, 2.0],
        strides=[8, 16, 32, 64, 128],
    )
)


def retina_predictors(head: AnchorHead) -> tuple[nn.Conv2d, nn.Conv2d]:
    """RetinaNet's 3x3 score and delta convs (``retina_cls``, ``retina_reg``) of ``head``:
    ``feat_channels`` in, ``A * cls_out_channels`` and ``A * 4`` out."""
    anchors = head.num_base_priors
    cls = nn.Conv2d(head.feat_channels, anchors * head.cls_out_channels, 3, padding=1)
    return cls, nn.Conv2d(head.feat_channels, anchors * 4, 3, padding=1)


@MODELS.register_module()
class RetinaHead(AnchorHead):
    """``stacked_convs`` 3x3 ConvModules per branch, then 3x3 score and delta convs.

    Takes :class:`AnchorHead`'s arguments plus ``stacked_convs``, ``conv_cfg`` and
    ``norm_cfg``; the default anchors are RetinaNet's (octave base scale 4, 3 scales per
    octave, ratios 0.5/1/2, strides 8–128) and the score conv's bias starts at the 0.01 prior.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        stacked_convs: int = 4,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        anchor_generator: Cfg | object = _RETINA_ANCHORS,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        self.stacked_convs = stacked_convs
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            anchor_generator=anchor_generator,
            init_cfg=prior_init_cfg("retina_cls") if init_cfg is None else init_cfg,
            **kwargs,
        )

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.retina_cls, self.retina_reg = retina_predictors(self)

    def _tower(self) -> nn.Sequential:
        return conv_tower(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg
        )

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls_feat = self.cls_convs(x)
        reg_feat = self.reg_convs(x)
        return self.retina_cls(cls_feat), self.retina_reg(reg_feat)
