"""``GARetinaHead``: RetinaNet with Guided Anchoring (MMDetection v2.28).

:class:`GuidedAnchorHead`'s training and test with RetinaNet's towers: the location branch on
the classification tower, the shape branch on the regression tower, one
:class:`FeatureAdaption` per tower, then 3x3 ``retina_cls`` / ``retina_reg``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from detforge.models.dense_heads.base_dense_head import conv_tower
from detforge.models.dense_heads.guided_anchor_head import FeatureAdaption, GuidedAnchorHead
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = ["GARetinaHead"]


@MODELS.register_module()
class GARetinaHead(GuidedAnchorHead):
    """Guided-anchoring RetinaNet head; :class:`GuidedAnchorHead`'s arguments plus
    ``stacked_convs``, ``conv_cfg`` and ``norm_cfg`` of the towers (default ``init_cfg``:
    Normal(std=0.01) convs, the 0.01 prior as ``conv_loc``'s and ``retina_cls``'s bias)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        stacked_convs: int = 4,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        if init_cfg is None:
            init_cfg = dict(
                type="Normal",
                layer="Conv2d",
                std=0.01,
                override=[
                    dict(type="Normal", name="conv_loc", std=0.01, bias_prob=0.01),
                    dict(type="Normal", name="retina_cls", std=0.01, bias_prob=0.01),
                ],
            )
        self.stacked_convs = stacked_convs
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg, **kwargs
        )

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.conv_loc = nn.Conv2d(self.feat_channels, 1, 1)
        self.conv_shape = nn.Conv2d(self.feat_channels, self.num_base_priors * 2, 1)
        self.feature_adaption_cls = self._adaption()
        self.feature_adaption_reg = self._adaption()
        a = self.num_base_priors
        self.retina_cls = nn.Conv2d(self.feat_channels, a * self.cls_out_channels, 3, padding=1)
        self.retina_reg = nn.Conv2d(self.feat_channels, a * 4, 3, padding=1)

    def _tower(self) -> nn.Sequential:
        return conv_tower(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg
        )

    def _adaption(self) -> FeatureAdaption:
        return FeatureAdaption(
            self.feat_channels, self.feat_channels, kernel_size=3, deform_groups=self.deform_groups
        )

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        cls_feat = self.cls_convs(x)
        reg_feat = self.reg_convs(x)
        loc_pred = self.conv_loc(cls_feat)
        shape_pred = self.conv_shape(reg_feat)
        cls_feat = self.feature_adaption_cls(cls_feat, shape_pred)
        reg_feat = self.feature_adaption_reg(reg_feat, shape_pred)
        return self.retina_cls(cls_feat), self.retina_reg(reg_feat), shape_pred, loc_pred
