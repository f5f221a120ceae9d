"""``DynamicMaskHead``: QueryInst's mask branch (MMDetection v2.28).

Each positive (or detected) query's attention feature generates, through a ``DynamicConv``
without projection, two per-instance 1x1 convolutions applied to its 14x14 mask RoI feature;
the result (reshaped back to ``[K, C, 14, 14]``) goes through ``FCNMaskHead``'s convs, deconv
and ``conv_logits`` to per-class logits ``[K, num_classes, 28, 28]``.

Loss: ``loss_mask`` (v2's ``DiceLoss(activate=False)``) of the sigmoid of each positive's
ground-truth-class logits against its 28x28 target, averaged over the positives of the batch
(averaged over the ranks, at least 1); without positives ``sum(mask_pred)`` (zero, keeps the
graph).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.registry import MODELS, Cfg, build_module
from detforge.utils.dist import reduce_mean

__all__ = ["DynamicMaskHead"]

_DYNAMIC_CONV = MappingProxyType(
    dict(
        type="DynamicConv",
        in_channels=256,
        feat_channels=64,
        out_channels=256,
        input_feat_shape=14,
        with_proj=False,
        act_cfg=dict(type="ReLU", inplace=True),
        norm_cfg=dict(type="LN"),
    )
)
_DICE = MappingProxyType(dict(type="DiceLoss", loss_weight=8.0))


@MODELS.register_module()
class DynamicMaskHead(FCNMaskHead):
    """QueryInst's mask head (``mmdet...DynamicMaskHead``, v2.28).

    Args:
        dynamic_conv_cfg: The ``DynamicConv`` (``with_proj=False``) config.
        loss_mask: Mask loss config (v2 default ``DiceLoss(loss_weight=8)``).
        class_agnostic: Must be ``False``.
        **kwargs: ``FCNMaskHead`` arguments (``num_convs``, ``in_channels``, ``norm_cfg``, ...).

    Example:
        >>> head = DynamicMaskHead(num_convs=1, in_channels=8, conv_out_channels=8,
        ...     num_classes=3, dynamic_conv_cfg=dict(type='DynamicConv', in_channels=8,
        ...     feat_channels=4, out_channels=8, input_feat_shape=14, with_proj=False))
        >>> head(torch.rand(2, 8, 14, 14), torch.rand(2, 8)).shape
        torch.Size([2, 3, 28, 28])
    """

    def __init__(
        self,
        dynamic_conv_cfg: Cfg | nn.Module = _DYNAMIC_CONV,
        loss_mask: Cfg | None = _DICE,
        class_agnostic: bool = False,
        **kwargs: Any,
    ) -> None:
        if class_agnostic:
            raise InvalidArgumentError("DynamicMaskHead: class_agnostic must be False")
        super().__init__(loss_mask=loss_mask, class_agnostic=False, **kwargs)
        self.instance_interactive_conv = build_module(dynamic_conv_cfg, MODELS)

    def init_weights(self) -> None:
        """Xavier-uniform for every matrix, zero ``conv_logits`` bias (v2)."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        bias = self.conv_logits.bias
        if isinstance(bias, torch.Tensor):
            nn.init.constant_(bias, 0.0)

    def forward(  # type: ignore[override]  # v2's (roi_feat, proposal_feat) signature
        self, roi_feat: torch.Tensor, proposal_feat: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[K, num_classes, 2h, 2w]`` of RoI features ``[K, C, h, w]`` and the queries'
        features ``[K, C]``."""
        feat = self.instance_interactive_conv(proposal_feat.reshape(-1, self.in_channels), roi_feat)
        return super().forward(feat.permute(0, 2, 1).reshape(roi_feat.size()))

    def loss(
        self, mask_pred: torch.Tensor, mask_targets: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss_mask`` (see the module docstring)."""
        if mask_pred.size(0) == 0:
            return dict(loss_mask=mask_pred.sum())
        num_pos = labels.new_ones(labels.size()).float().sum()
        avg_factor = torch.clamp(reduce_mean(num_pos), min=1.0).item()
        picked = mask_pred[torch.arange(len(labels), device=labels.device), labels].sigmoid()
        loss_mask: torch.Tensor = self.loss_mask(picked, mask_targets, avg_factor=avg_factor)
        return dict(loss_mask=loss_mask)
