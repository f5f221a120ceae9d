"""``DoubleConvFCBBoxHead``: Double-Head R-CNN's box head (Wu et al., 2020), as in v2.

Two branches on separately pooled RoI features: the classification branch flattens its RoI
features into ``num_fcs`` fcs (ReLU) and ``fc_cls``; the regression branch widens its
features with a :class:`BasicResBlock` to ``conv_out_channels``, runs ``num_convs`` ResNet
bottlenecks, average-pools and predicts the deltas with ``fc_reg``::

    x_cls -> fc_branch (fcs) ------------------------------> fc_cls
    x_reg -> res_block -> conv_branch (bottlenecks) -> pool -> fc_reg
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import Bottleneck, ConvModule
from detforge.models.layers.res_layer import BN
from detforge.models.roi_heads.bbox_heads import BBoxHead
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = ["BasicResBlock", "DoubleConvFCBBoxHead"]

_DOUBLE_INIT: Cfg = MappingProxyType(
    dict(
        type="Normal",
        override=[
            dict(type="Normal", name="fc_cls", std=0.01),
            dict(type="Normal", name="fc_reg", std=0.001),
            dict(type="Xavier", name="fc_branch", distribution="uniform"),
        ],
    )
)


class BasicResBlock(nn.Module):
    """3x3 conv (norm, ReLU) then 1x1 conv (norm), plus a 1x1 conv (norm) shortcut, ReLU.

    Unlike ResNet's ``BasicBlock`` the second conv is 1x1, and the shortcut always projects
    to ``out_channels``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.

    Example:
        >>> BasicResBlock(4, 8)(torch.zeros(2, 4, 7, 7)).shape
        torch.Size([2, 8, 7, 7])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = BN,
    ) -> None:
        super().__init__()
        self.conv1 = ConvModule(
            in_channels,
            in_channels,
            kernel_size=3,
            padding=1,
            bias=False,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
        )
        self.conv2 = ConvModule(
            in_channels,
            out_channels,
            kernel_size=1,
            bias=False,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=None,
        )
        self.conv_identity = ConvModule(
            in_channels,
            out_channels,
            kernel_size=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=None,
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x)) + self.conv_identity(x)
        return self.relu(out)


@MODELS.register_module()
class DoubleConvFCBBoxHead(BBoxHead):
    """Double-Head box head (see the module docstring); called as ``head(x_cls, x_reg)``.

    Takes :class:`BBoxHead`'s arguments (``with_avg_pool`` defaults to, and must be, True)
    plus:

    Args:
        num_convs: Bottlenecks of the regression branch (at least 1).
        num_fcs: Fcs of the classification branch (at least 1).
        conv_out_channels: Width of the regression branch.
        fc_out_channels: Width of the classification fcs.
        conv_cfg: Conv layer config of the bottlenecks.
        norm_cfg: Norm layer config of the bottlenecks (the res block always uses BN, as in
            v2).
        init_cfg: Default: Normal(0.01) ``fc_cls``, Normal(0.001) ``fc_reg``, Xavier (uniform)
            ``fc_branch``.

    Raises:
        ValueError: ``with_avg_pool`` is False, or ``num_convs``/``num_fcs`` is 0.

    Example:
        >>> head = DoubleConvFCBBoxHead(num_convs=1, num_fcs=1, in_channels=4,
        ...     conv_out_channels=8, fc_out_channels=16, num_classes=3)
        >>> cls, reg = head(torch.zeros(2, 4, 7, 7), torch.zeros(2, 4, 7, 7))
        >>> cls.shape, reg.shape
        (torch.Size([2, 4]), torch.Size([2, 12]))
    """

    def __init__(
        self,
        num_convs: int = 0,
        num_fcs: int = 0,
        conv_out_channels: int = 1024,
        fc_out_channels: int = 1024,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = BN,
        init_cfg: Any = _DOUBLE_INIT,
        with_avg_pool: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(init_cfg=plain_cfg(init_cfg), with_avg_pool=with_avg_pool, **kwargs)
        if not with_avg_pool:
            raise InvalidArgumentError("DoubleConvFCBBoxHead needs with_avg_pool=True")
        if num_convs <= 0 or num_fcs <= 0:
            raise InvalidArgumentError(
                f"DoubleConvFCBBoxHead needs num_convs > 0 and num_fcs > 0, got {num_convs} "
                f"and {num_fcs}"
            )
        self.num_convs = num_convs
        self.num_fcs = num_fcs
        self.conv_out_channels = conv_out_channels
        self.fc_out_channels = fc_out_channels
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.res_block = BasicResBlock(self.in_channels, conv_out_channels)
        self.conv_branch = nn.ModuleList(
            Bottleneck(
                inplanes=conv_out_channels,
                planes=conv_out_channels // 4,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
            )
            for _ in range(num_convs)
        )
        self.fc_branch = nn.ModuleList(
            nn.Linear(
                self.in_channels * self.roi_feat_area if i == 0 else fc_out_channels,
                fc_out_channels,
            )
            for i in range(num_fcs)
        )
        # replaces BBoxHead's predictors in place (their state-dict keys come first, as in v2)
        self.fc_reg = nn.Linear(
            conv_out_channels, 4 if self.reg_class_agnostic else 4 * self.num_classes
        )
        self.fc_cls = nn.Linear(fc_out_channels, self.num_classes + 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(  # type: ignore[override]  # v2: a classification and a regression input
        self, x_cls: torch.Tensor, x_reg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_conv = self.res_block(x_reg)
        for conv in self.conv_branch:
            x_conv = conv(x_conv)
        x_conv = self.avg_pool(x_conv).flatten(1)
        bbox_pred = self.fc_reg(x_conv)
        x_fc = x_cls.flatten(1)
        for fc in self.fc_branch:
            x_fc = self.relu(fc(x_fc))
        return self.fc_cls(x_fc), bbox_pred
