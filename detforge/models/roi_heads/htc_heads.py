"""Hybrid Task Cascade's heads (v2): ``HTCMaskHead`` and the semantic branch
``FusedSemanticHead``.

``HTCMaskHead`` is an :class:`FCNMaskHead` whose input may be summed with the previous stage's
mask features through a 1x1 ``conv_res`` (HTC's mask information flow); it can return the
features after its convs, the logits, or both.

``FusedSemanticHead`` fuses all FPN levels at the resolution of ``fusion_level`` (1x1 lateral
convs; the other levels resized bilinearly with ``align_corners=True`` and summed), runs
``num_convs`` 3x3 convs and predicts per-pixel semantic logits (``conv_logits``, trained with a
cross-entropy that ignores label 255 against ``gt_semantic_seg``) and an embedding
(``conv_embedding``) that the RoI head pools and adds to the box and mask RoI features.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.registry import MODELS, Cfg, build_module, plain_cfg

__all__ = ["FusedSemanticHead", "HTCMaskHead"]

_SEG_LOSS: Cfg = MappingProxyType(
    {"type": "CrossEntropyLoss", "ignore_index": 255, "loss_weight": 0.2}
)
_SEG_INIT: Cfg = MappingProxyType({"type": "Kaiming", "override": {"name": "conv_logits"}})


@MODELS.register_module()
class HTCMaskHead(FCNMaskHead):
    """HTC's mask head (``mmdet`` v2 ``HTCMaskHead``): extra key ``conv_res``.

    Args:
        with_conv_res: Build ``conv_res`` (a 1x1 ConvModule) to take the previous stage's
            mask features (``False`` for the first stage).
        **kwargs: :class:`FCNMaskHead`'s arguments.

    Example:
        >>> head = HTCMaskHead(num_convs=1, in_channels=4, conv_out_channels=4, num_classes=3)
        >>> logits, feat = head(torch.rand(2, 4, 14, 14), torch.rand(2, 4, 14, 14))
        >>> logits.shape, feat.shape
        (torch.Size([2, 3, 28, 28]), torch.Size([2, 4, 14, 14]))
    """

    def __init__(self, with_conv_res: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_conv_res = with_conv_res
        self.conv_res: ConvModule | None = None
        if with_conv_res:
            self.conv_res = ConvModule(
                self.conv_out_channels,
                self.conv_out_channels,
                1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
            )

    def embed(self, x: torch.Tensor, res_feat: torch.Tensor | None = None) -> torch.Tensor:
        """The features after the convs; ``res_feat`` (the previous stage's) is added to the
        input through ``conv_res`` first.

        Raises:
            ValueError: ``res_feat`` is given to a head without ``conv_res``.
        """
        if res_feat is not None:
            if self.conv_res is None:
                raise InvalidArgumentError(
                    "HTCMaskHead: res_feat given to a head built with with_conv_res=False"
                )
            x = x + self.conv_res(res_feat)
        for conv in self.convs:
            x = conv(x)
        return x

    def forward(  # v2's HTC flags
        self,
        x: torch.Tensor,
        res_feat: torch.Tensor | None = None,
        return_logits: bool = True,
        return_feat: bool = True,
    ) -> Any:
        """``(logits, feat)``, or only one of them when the other flag is ``False`` (v2)."""
        if not (return_logits or return_feat):
            raise InvalidArgumentError("HTCMaskHead: return_logits and return_feat are both False")
        feat = self.embed(x, res_feat)
        if not return_logits:
            return feat
        logits = self._predict(feat)
        return (logits, feat) if return_feat else logits

    def init_weights(self) -> None:
        super().init_weights()
        if self.conv_res is not None:
            self.conv_res.init_weights()


@MODELS.register_module()
class FusedSemanticHead(nn.Module):
    """Multi-level fused semantic segmentation head of HTC (``mmdet`` v2).

    State-dict keys: ``lateral_convs.{i}.conv``, ``convs.{i}.conv``, ``conv_embedding.conv``,
    ``conv_logits`` (and the norms with ``norm_cfg``).

    Args:
        num_ins: Number of input levels.
        fusion_level: Level whose resolution the fused map has (1: stride 8 on an FPN).
        num_convs: 3x3 ConvModules after the fusion.
        in_channels: Channels of every input level.
        conv_out_channels: Channels of the convs and of the embedding.
        num_classes: Semantic classes (183 for COCO-stuff maps).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        ignore_label: Deprecated: ``loss_seg.ignore_index``.
        loss_weight: Deprecated: ``loss_seg.loss_weight``.
        loss_seg: Loss config (default cross-entropy, ``ignore_index=255``, weight 0.2).
        init_cfg: Initialisation (default Kaiming for ``conv_logits``).

    Example:
        >>> head = FusedSemanticHead(num_ins=2, fusion_level=1, num_convs=1, in_channels=4,
        ...                          conv_out_channels=4, num_classes=5)
        >>> pred, feat = head([torch.rand(1, 4, 16, 16), torch.rand(1, 4, 8, 8)])
        >>> pred.shape, feat.shape
        (torch.Size([1, 5, 8, 8]), torch.Size([1, 4, 8, 8]))
    """

    def __init__(
        self,
        num_ins: int,
        fusion_level: int,
        num_convs: int = 4,
        in_channels: int = 256,
        conv_out_channels: int = 256,
        num_classes: int = 183,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        ignore_label: int | None = None,
        loss_weight: float | None = None,
        loss_seg: Cfg | nn.Module = _SEG_LOSS,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if not 0 <= fusion_level < num_ins:
            raise InvalidArgumentError(
                f"{type(self).__name__}: fusion_level {fusion_level} is not one of the "
                f"{num_ins} input levels"
            )
        self.num_ins = num_ins
        self.fusion_level = fusion_level
        self.num_convs = num_convs
        self.in_channels = in_channels
        self.conv_out_channels = conv_out_channels
        self.num_classes = num_classes
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.init_cfg = plain_cfg(_SEG_INIT if init_cfg is None else init_cfg)
        self.lateral_convs = nn.ModuleList(
            ConvModule(
                in_channels, in_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, inplace=False
            )
            for _ in range(num_ins)
        )
        self.convs: Any = nn.ModuleList(
            ConvModule(
                in_channels if i == 0 else conv_out_channels,
                conv_out_channels,
                3,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
            )
            for i in range(num_convs)
        )
        self.conv_embedding = ConvModule(
            conv_out_channels, conv_out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg
        )
        self.conv_logits = nn.Conv2d(conv_out_channels, num_classes, 1)
        self.criterion = build_module(_seg_loss_cfg(loss_seg, ignore_label, loss_weight), MODELS)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def fuse(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """The levels summed at the resolution of ``fusion_level`` (after their laterals)."""
        if len(feats) != self.num_ins:
            raise InvalidArgumentError(
                f"{type(self).__name__}: expected {self.num_ins} feature levels, got {len(feats)}"
            )
        x = self.lateral_convs[self.fusion_level](feats[self.fusion_level])
        size = tuple(x.shape[-2:])
        for i, feat in enumerate(feats):
            if i != self.fusion_level:
                resized = F.interpolate(feat, size=size, mode="bilinear", align_corners=True)
                x = x + self.lateral_convs[i](resized)
        return x

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask_pred [B, num_classes, h, w], semantic_feat [B, conv_out_channels, h, w])``."""
        x = self.fuse(feats)
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(x), self.conv_embedding(x)

    def loss(self, mask_pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``loss_semantic_seg``: cross-entropy of ``mask_pred`` against ``labels`` ``[B, 1, h,
        w]`` (the collated ``gt_semantic_seg``, already at ``mask_pred``'s resolution).

        Raises:
            ValueError: the label map's size is not the prediction's.
        """
        labels = labels.squeeze(1).long()
        if labels.shape[-2:] != mask_pred.shape[-2:] or labels.shape[0] != mask_pred.shape[0]:
            raise InvalidArgumentError(
                f"{type(self).__name__}: gt_semantic_seg {tuple(labels.shape)} does not match the "
                f"prediction {tuple(mask_pred.shape)} (SegRescale(scale_factor=1/8) after Pad "
                "gives the stride-8 map)"
            )
        loss: torch.Tensor = self.criterion(mask_pred, labels)
        return loss


def _seg_loss_cfg(
    loss_seg: Cfg | nn.Module, ignore_label: int | None, loss_weight: float | None
) -> Cfg | nn.Module:
    """``loss_seg`` with the deprecated ``ignore_label`` / ``loss_weight`` applied (v2)."""
    if ignore_label is None and loss_weight is None:
        return loss_seg
    if not isinstance(loss_seg, Mapping):
        raise InvalidArgumentError(
            "FusedSemanticHead: ignore_label/loss_weight need a loss_seg config"
        )
    warnings.warn(
        "FusedSemanticHead: ignore_label and loss_weight are deprecated; set ignore_index and "
        "loss_weight in loss_seg",
        DeprecationWarning,
        stacklevel=3,
    )
    cfg = dict(loss_seg)
    if ignore_label is not None:
        cfg["ignore_index"] = ignore_label
    if loss_weight is not None:
        cfg["loss_weight"] = loss_weight
    return cfg
