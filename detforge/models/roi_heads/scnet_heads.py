"""SCNet's heads (v2): ``SCNetBBoxHead``, ``SCNetMaskHead``, ``SCNetSemanticHead``,
``FeatureRelayHead`` and ``GlobalContextHead``, and the ``SimplifiedBasicBlock`` they use.

* ``SCNetBBoxHead`` is a :class:`ConvFCBBoxHead` that can also return the features after its
  shared layers (``return_shared_feat``): the "relayed" features that the
  ``FeatureRelayHead`` (an fc, reshaped to ``[C, s, s]`` and upsampled 2x bilinearly with
  ``align_corners=True``) turns into a map added to the mask RoI features.
* ``SCNetMaskHead`` / ``SCNetSemanticHead`` replace their ``num_convs`` 3x3 convs by
  ``num_convs // 2`` ``SimplifiedBasicBlock``s (``conv_to_res=True``): conv → norm → ReLU →
  conv → norm, plus the shortcut, without a final ReLU; convs have a bias only without norm.
* ``GlobalContextHead`` runs convs (or residual blocks) on the last level, average-pools it to
  ``[B, C, 1, 1]`` (the context added to every RoI feature of the image) and predicts which
  classes the image contains, trained with a binary cross-entropy against the multi-hot
  ``gt_labels`` (``loss_glbctx``, times ``loss_weight``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import ConvModule, ResLayer, apply_init_cfg, build_conv_layer
from detforge.models.layers.norm import build_norm_layer
from detforge.models.roi_heads.convfc_bbox_head import ConvFCBBoxHead
from detforge.models.roi_heads.htc_heads import FusedSemanticHead
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = [
    "FeatureRelayHead",
    "GlobalContextHead",
    "SCNetBBoxHead",
    "SCNetMaskHead",
    "SCNetSemanticHead",
    "SimplifiedBasicBlock",
]

_BN: Cfg = MappingProxyType({"type": "BN"})
_RELAY_INIT: Cfg = MappingProxyType({"type": "Kaiming", "layer": "Linear"})
_GLBCTX_INIT: Cfg = MappingProxyType({"type": "Normal", "std": 0.01, "override": {"name": "fc"}})


class SimplifiedBasicBlock(nn.Module):
    """SCNet's residual block: ``conv-norm-relu-conv-norm + shortcut`` (no final ReLU; the
    norms are optional and the convs have a bias without them).

    Keys: ``conv1``, ``{norm}1``, ``conv2``, ``{norm}2`` (``bn1``/``gn1``...).

    Args:
        inplanes: Input channels.
        planes: Output channels.
        stride: Stride of the first conv.
        dilation: Dilation (and padding) of the first conv.
        downsample: Shortcut module (``None``: identity).
        style: Accepted for ``ResLayer`` (no effect).
        with_cp: Must be ``False``.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config, or ``None`` for no norms.
        dcn: Must be ``None``.
        plugins: Must be ``None``.

    Example:
        >>> block = SimplifiedBasicBlock(4, 4, norm_cfg=None)
        >>> block(torch.zeros(1, 4, 5, 5)).shape, block.conv1.bias is not None
        (torch.Size([1, 4, 5, 5]), True)
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = "pytorch",
        with_cp: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = _BN,
        dcn: Cfg | None = None,
        plugins: Any = None,
    ) -> None:
        super().__init__()
        if dcn is not None or plugins is not None or with_cp:
            raise NotImplementedError("SimplifiedBasicBlock: dcn, plugins and with_cp")
        with_bias = norm_cfg is None
        self.conv1 = build_conv_layer(
            conv_cfg,
            inplanes,
            planes,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=with_bias,
        )
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=with_bias)
        self.norm1_name: str | None = None
        self.norm2_name: str | None = None
        if norm_cfg is not None:
            self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
            self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
            self.add_module(self.norm1_name, norm1)
            self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation

    def _norm(self, name: str | None, x: torch.Tensor) -> torch.Tensor:
        return x if name is None else getattr(self, name)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self._norm(self.norm1_name, self.conv1(x)))
        out = self._norm(self.norm2_name, self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def init_weights(self) -> None:
        """Nothing: the convs keep PyTorch's default initialisation, as in v2."""


def res_blocks(
    in_channels: int, out_channels: int, num_convs: int, conv_cfg: Cfg | None, norm_cfg: Any
) -> ResLayer:
    """``num_convs // 2`` :class:`SimplifiedBasicBlock`s (keys ``{i}.conv1``, ...)."""
    return ResLayer(
        SimplifiedBasicBlock,
        in_channels,
        out_channels,
        num_convs // 2,
        conv_cfg=conv_cfg,
        norm_cfg=norm_cfg,
    )


@MODELS.register_module()
class SCNetBBoxHead(ConvFCBBoxHead):
    """SCNet's box head: :class:`ConvFCBBoxHead` (same arguments) that can also return the
    features after its shared layers.

    Example:
        >>> head = SCNetBBoxHead(num_shared_fcs=2, in_channels=4, fc_out_channels=8,
        ...                      num_classes=3)
        >>> cls_score, bbox_pred, shared = head(torch.rand(2, 4, 7, 7), return_shared_feat=True)
        >>> cls_score.shape, bbox_pred.shape, shared.shape
        (torch.Size([2, 4]), torch.Size([2, 12]), torch.Size([2, 8]))
    """

    def forward(  # type: ignore[override]  # v2's return_shared_feat
        self, x: torch.Tensor, return_shared_feat: bool = False
    ) -> tuple[torch.Tensor | None, ...]:
        """``(cls_score, bbox_pred)``, plus the shared features with ``return_shared_feat``."""
        shared = self._forward_shared(x)
        cls_score, bbox_pred = self._forward_cls_reg(shared)
        if return_shared_feat:
            return cls_score, bbox_pred, shared
        return cls_score, bbox_pred


@MODELS.register_module()
class SCNetMaskHead(FCNMaskHead):
    """SCNet's mask head: an :class:`FCNMaskHead` whose convs are residual blocks.

    Args:
        conv_to_res: Replace the ``num_convs`` convs by ``num_convs // 2``
            :class:`SimplifiedBasicBlock`s (keys ``convs.{i}.conv1``, ...; needs 3x3 convs).
        **kwargs: :class:`FCNMaskHead`'s arguments.

    Example:
        >>> head = SCNetMaskHead(num_convs=2, in_channels=4, conv_out_channels=4,
        ...                      num_classes=3)
        >>> head(torch.rand(2, 4, 14, 14)).shape, type(head.convs[0]).__name__
        (torch.Size([2, 3, 28, 28]), 'SimplifiedBasicBlock')
    """

    def __init__(self, conv_to_res: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conv_to_res = conv_to_res
        if conv_to_res:
            if self.conv_kernel_size != 3:
                raise InvalidArgumentError(
                    f"SCNetMaskHead: conv_to_res needs conv_kernel_size=3, got "
                    f"{self.conv_kernel_size}"
                )
            self.num_res_blocks = self.num_convs // 2
            self.convs = res_blocks(  # type: ignore[assignment]  # blocks, not ConvModules
                self.in_channels,
                self.conv_out_channels,
                self.num_convs,
                self.conv_cfg,
                self.norm_cfg,
            )


@MODELS.register_module()
class SCNetSemanticHead(FusedSemanticHead):
    """SCNet's semantic head: a :class:`FusedSemanticHead` whose convs are residual blocks.

    Args:
        conv_to_res: Replace the ``num_convs`` convs by ``num_convs // 2``
            :class:`SimplifiedBasicBlock`s (``num_convs`` becomes their number).
        **kwargs: :class:`FusedSemanticHead`'s arguments.
    """

    def __init__(self, conv_to_res: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conv_to_res = conv_to_res
        if conv_to_res:
            self.convs = res_blocks(
                self.in_channels,
                self.conv_out_channels,
                self.num_convs,
                self.conv_cfg,
                self.norm_cfg,
            )
            self.num_convs = self.num_convs // 2


@MODELS.register_module()
class FeatureRelayHead(nn.Module):
    """SCNet's feature relay: box-head features ``[N, in_channels]`` → a mask-sized map.

    Keys: ``fc``.

    Args:
        in_channels: Channels of the box head's shared features.
        out_conv_channels: Channels of the output map.
        roi_feat_size: Side of the map before upsampling.
        scale_factor: Bilinear upsampling factor (``align_corners=True``).
        init_cfg: Initialisation (default Kaiming for the ``Linear``).

    Example:
        >>> FeatureRelayHead(in_channels=8, out_conv_channels=2, roi_feat_size=3)(
        ...     torch.rand(4, 8)).shape
        torch.Size([4, 2, 6, 6])
    """

    def __init__(
        self,
        in_channels: int = 1024,
        out_conv_channels: int = 256,
        roi_feat_size: int = 7,
        scale_factor: int = 2,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(roi_feat_size, int):
            raise TypeError(f"FeatureRelayHead: roi_feat_size must be an int, got {roi_feat_size}")
        self.in_channels = in_channels
        self.out_conv_channels = out_conv_channels
        self.roi_feat_size = roi_feat_size
        self.out_channels = roi_feat_size**2 * out_conv_channels
        self.scale_factor = scale_factor
        self.init_cfg = plain_cfg(_RELAY_INIT if init_cfg is None else init_cfg)
        self.fc = nn.Linear(in_channels, self.out_channels)
        self.upsample = nn.Upsample(scale_factor=scale_factor, mode="bilinear", align_corners=True)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """``Tensor[N, out_conv_channels, s * f, s * f]``; ``None`` for ``N = 0`` (v2)."""
        num = x.shape[0]
        if num == 0:
            return None
        side = self.roi_feat_size
        out: torch.Tensor = self.upsample(
            self.fc(x).reshape(num, self.out_conv_channels, side, side)
        )
        return out


@MODELS.register_module()
class GlobalContextHead(nn.Module):
    """SCNet's global context head on the last feature level.

    Keys: ``convs.{i}.conv`` (``convs.{i}.conv1``... with ``conv_to_res``), ``fc``.

    Args:
        num_convs: 3x3 ConvModules (``num_convs // 2`` residual blocks with ``conv_to_res``).
        in_channels: Channels of the feature level.
        conv_out_channels: Channels of the convs (and of the context).
        num_classes: Foreground classes predicted as present or not.
        loss_weight: Multiplier of ``loss_glbctx``.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        conv_to_res: Use residual blocks.
        init_cfg: Initialisation (default ``Normal(std=0.01)`` for ``fc``).

    Example:
        >>> head = GlobalContextHead(num_convs=2, in_channels=4, conv_out_channels=4,
        ...                          num_classes=3)
        >>> pred, ctx = head([torch.rand(2, 4, 8, 8)])
        >>> pred.shape, ctx.shape
        (torch.Size([2, 3]), torch.Size([2, 4, 1, 1]))
    """

    def __init__(
        self,
        num_convs: int = 4,
        in_channels: int = 256,
        conv_out_channels: int = 256,
        num_classes: int = 80,
        loss_weight: float = 1.0,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        conv_to_res: bool = False,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv_out_channels = conv_out_channels
        self.num_classes = num_classes
        self.loss_weight = loss_weight
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.conv_to_res = conv_to_res
        self.init_cfg = plain_cfg(_GLBCTX_INIT if init_cfg is None else init_cfg)
        self.convs: Any
        if conv_to_res:
            self.convs = res_blocks(in_channels, conv_out_channels, num_convs, conv_cfg, norm_cfg)
            self.num_convs = num_convs // 2
        else:
            self.convs = nn.ModuleList(
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
            self.num_convs = num_convs
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(conv_out_channels, num_classes)
        self.criterion = nn.BCEWithLogitsLoss()

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(class-presence logits [B, num_classes], context [B, C, 1, 1])``."""
        x = feats[-1]
        for conv in self.convs:
            x = conv(x)
        x = self.pool(x)
        return self.fc(x.flatten(1)), x

    def loss(self, pred: torch.Tensor, labels: Sequence[torch.Tensor]) -> torch.Tensor:
        """``loss_glbctx``: BCE of the logits against each image's multi-hot label set."""
        targets = torch.zeros_like(pred)
        for i, label in enumerate(labels):
            targets[i, label.unique()] = 1.0
        loss: torch.Tensor = self.loss_weight * self.criterion(pred, targets)
        return loss
