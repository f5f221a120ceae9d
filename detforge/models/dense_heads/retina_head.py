"""``RetinaHead``: RetinaNet's classification and box subnets (v2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.layers import ConvModule
from detforge.registry import MODELS

__all__ = ["RetinaHead"]

Cfg = Mapping[str, Any]


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
        anchor_generator: Cfg | None = None,
        feat_channels: int = 256,
        bbox_coder: Cfg | None = None,
        reg_decoded_bbox: bool = False,
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            anchor_generator=anchor_generator or dict(
                type="AnchorGenerator", octave_base_scale=4, scales_per_octave=3,
                ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128],
            ),
            bbox_coder=bbox_coder,
            reg_decoded_bbox=reg_decoded_bbox,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg if init_cfg is not None else dict(
                type="Normal", layer="Conv2d", std=0.01,
                override=dict(type="Normal", name="retina_cls", std=0.01, bias_prob=0.01),
            ),
        )  # fmt: skip

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            channels = self.in_channels if i == 0 else self.feat_channels
            for branch in (self.cls_convs, self.reg_convs):
                branch.append(
                    ConvModule(
                        channels,
                        self.feat_channels,
                        3,
                        stride=1,
                        padding=1,
                        conv_cfg=self.conv_cfg,
                        norm_cfg=self.norm_cfg,
                    )
                )
        self.retina_cls = nn.Conv2d(
            self.feat_channels, self.num_base_priors * self.cls_out_channels, 3, padding=1
        )
        self.retina_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4, 3, padding=1)

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls_feat = x
        reg_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.retina_cls(cls_feat), self.retina_reg(reg_feat)
