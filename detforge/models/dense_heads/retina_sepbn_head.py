"""``RetinaSepBNHead``: RetinaNet's head with convs shared across levels but norms per level.

NAS-FPN's head (v2): the ``stacked_convs`` convs of each branch are one set of weights for all
``num_ins`` levels, while every level has its own norm layers (BN statistics differ between
levels). The state_dict lists each level's convs (``cls_convs.{level}.{i}.conv.weight``), all
pointing to level 0's tensors, as v2's did; loading a v2 checkpoint assigns them in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.base_dense_head import conv_tower, prior_init_cfg
from detforge.models.dense_heads.retina_head import retina_predictors
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, Cfg

__all__ = ["RetinaSepBNHead"]


@MODELS.register_module()
class RetinaSepBNHead(AnchorHead):
    """RetinaNet head with per-level norm layers and shared convs (NAS-FPN).

    Takes :class:`AnchorHead`'s arguments (its default anchors and losses, as in v2) plus:

    Args:
        num_ins: Number of feature levels (one set of norm layers each).
        stacked_convs: 3x3 ``ConvModule`` s per branch.
        conv_cfg: Conv config of the branch convs.
        norm_cfg: Norm config of the branch convs.
        init_cfg: Must be ``None`` (as in v2): Normal(std=0.01) for every conv and the 0.01
            prior as the bias of ``retina_cls``.

    Example:
        >>> head = RetinaSepBNHead(num_classes=3, num_ins=2, in_channels=8, feat_channels=8,
        ...                        stacked_convs=2, norm_cfg=dict(type='BN'))
        >>> head.cls_convs[1][0].conv is head.cls_convs[0][0].conv
        True
        >>> scores, deltas = head([torch.rand(1, 8, 8, 8), torch.rand(1, 8, 4, 4)])
        >>> tuple(scores[1].shape), tuple(deltas[1].shape)
        ((1, 27, 4, 4), (1, 36, 4, 4))
    """

    def __init__(
        self,
        num_classes: int,
        num_ins: int,
        in_channels: int,
        stacked_convs: int = 4,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        if init_cfg is not None:
            raise InvalidArgumentError(
                "RetinaSepBNHead: init_cfg must be None (the head initialises its shared convs "
                f"itself, as in MMDetection v2), got {init_cfg!r}"
            )
        self.num_ins = num_ins
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            init_cfg=prior_init_cfg("retina_cls"),
            **kwargs,
        )

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = nn.ModuleList(self._tower() for _ in range(self.num_ins))
        self.reg_convs = nn.ModuleList(self._tower() for _ in range(self.num_ins))
        for branch in (self.cls_convs, self.reg_convs):
            towers = [cast(nn.Sequential, tower) for tower in branch]
            for tower in towers[1:]:
                for shared, conv_module in zip(towers[0], tower, strict=True):
                    conv_module.conv = shared.conv
        self.retina_cls, self.retina_reg = retina_predictors(self)

    def _tower(self) -> nn.Sequential:
        return conv_tower(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg
        )

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: ``cls_score [B, A*C, H, W]`` and ``bbox_pred [B, A*4, H, W]``."""
        if len(feats) != self.num_ins:
            raise InvalidArgumentError(
                f"RetinaSepBNHead: got {len(feats)} levels, num_ins={self.num_ins}"
            )
        return multi_apply(self.forward_single, feats, list(self.cls_convs), list(self.reg_convs))

    def forward_single(  # type: ignore[override]  # v2: the level's towers come with x
        self, x: torch.Tensor, cls_convs: nn.Module, reg_convs: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.retina_cls(cls_convs(x)), self.retina_reg(reg_convs(x))
