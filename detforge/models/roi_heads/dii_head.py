"""Sparse R-CNN's box head: ``DynamicConv`` and ``DIIHead`` (MMDetection v2.28 numerics/keys).

One stage of Sparse R-CNN updates each proposal's *object feature* ``[N, P, C]`` and box:

1. self-attention over the ``P`` proposals of an image (``attention``: mmcv's
   ``MultiheadAttention``, sequence-first, with its residual), then ``attention_norm``;
2. the instance-interactive ``DynamicConv``: every object feature generates the weights of two
   1x1 convolutions (``C -> feat_channels -> C``) applied to its own 7x7 RoI feature, each
   followed by LayerNorm and ReLU, then flattened, projected to ``C``, LayerNorm and ReLU;
   added to the attention output (dropout) and ``instance_interactive_conv_norm``;
3. the feed-forward network (mmcv's ``FFN`` with its residual) and ``ffn_norm``;
4. ``cls_fcs`` / ``reg_fcs`` (Linear without bias, LayerNorm, ReLU, repeated), then ``fc_cls``
   (``num_classes`` logits with a sigmoid loss) and ``fc_reg`` (deltas applied by the
   ``DeltaXYWHBBoxCoder`` to the stage's input boxes, class-agnostic, never clipped).

Losses of a stage (``DIIHead.loss``), averaged over the batch's positives ``num_pos`` (the
matched queries, averaged over the ranks): ``loss_cls`` on every query (background = label
``num_classes``), ``pos_acc`` (percent, positives only), ``loss_bbox`` on the positives' boxes
divided by the image size ``(w, h, w, h)``, and ``loss_iou`` on the absolute boxes. Without
positives the box losses are ``0 * sum(bbox_pred)``.

The state-dict keys are v2's: ``fc_cls``/``fc_reg`` first (built by ``BBoxHead``, replaced
here in place), then ``attention.attn.*``, ``instance_interactive_conv.*``,
``ffn.layers.0.0.*``, ``cls_fcs.*``, ``reg_fcs.*``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import bias_init_with_prob
from detforge.models.layers.activation import build_activation_layer
from detforge.models.layers.norm import build_norm_layer
from detforge.models.losses import accuracy
from detforge.models.roi_heads.bbox_heads import BBoxHead
from detforge.registry import MODELS, Cfg, build_module, plain_cfg
from detforge.utils.dist import reduce_mean

__all__ = ["DIIHead", "DynamicConv"]

_RELU = MappingProxyType(dict(type="ReLU", inplace=True))
_LN = MappingProxyType(dict(type="LN"))
_DYNAMIC_CONV = MappingProxyType(
    dict(
        type="DynamicConv",
        in_channels=256,
        feat_channels=64,
        out_channels=256,
        input_feat_shape=7,
        act_cfg=_RELU,
        norm_cfg=_LN,
    )
)
_GIOU = MappingProxyType(dict(type="GIoULoss", loss_weight=2.0))


@MODELS.register_module()
class DynamicConv(nn.Module):
    """Per-instance 1x1 convolutions whose weights come from a parameter feature (v2).

    Args:
        in_channels: Channels of the parameter feature and of the input feature.
        feat_channels: Inner channels of the two dynamic convolutions.
        out_channels: Output channels (``None``: ``in_channels``).
        input_feat_shape: Side of the square input feature (7 for a 7x7 RoI).
        with_proj: Flatten the result and project it to ``out_channels`` (``fc_layer``).
        act_cfg: Activation after each dynamic convolution and the projection.
        norm_cfg: Normalisation after each of them (LayerNorm).

    Example:
        >>> conv = DynamicConv(in_channels=8, feat_channels=4, input_feat_shape=3)
        >>> conv(torch.randn(5, 8), torch.randn(5, 8, 3, 3)).shape
        torch.Size([5, 8])
    """

    def __init__(
        self,
        in_channels: int = 256,
        feat_channels: int = 64,
        out_channels: int | None = None,
        input_feat_shape: int = 7,
        with_proj: bool = True,
        act_cfg: Cfg = _RELU,
        norm_cfg: Cfg = _LN,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.out_channels = out_channels if out_channels else in_channels
        self.input_feat_shape = input_feat_shape
        self.with_proj = with_proj
        self.init_cfg = plain_cfg(init_cfg)
        self.num_params_in = in_channels * feat_channels
        self.num_params_out = self.out_channels * feat_channels
        self.dynamic_layer = nn.Linear(in_channels, self.num_params_in + self.num_params_out)
        self.norm_in = build_norm_layer(norm_cfg, feat_channels)[1]
        self.norm_out = build_norm_layer(norm_cfg, self.out_channels)[1]
        self.activation = build_activation_layer(act_cfg)
        if with_proj:
            self.fc_layer = nn.Linear(self.out_channels * input_feat_shape**2, self.out_channels)
            self.fc_norm = build_norm_layer(norm_cfg, self.out_channels)[1]

    def forward(self, param_feature: torch.Tensor, input_feature: torch.Tensor) -> torch.Tensor:
        """``Tensor[R, in_channels]`` and ``Tensor[R, in_channels, H, W]`` to
        ``Tensor[R, out_channels]`` (``[R, H * W, out_channels]`` without ``with_proj``)."""
        feats = input_feature.flatten(2).transpose(1, 2)  # [R, H*W, C]
        params = self.dynamic_layer(param_feature)
        param_in = params[:, : self.num_params_in].view(-1, self.in_channels, self.feat_channels)
        param_out = params[:, -self.num_params_out :].view(
            -1, self.feat_channels, self.out_channels
        )
        feats = self.activation(self.norm_in(torch.bmm(feats, param_in)))
        feats = self.activation(self.norm_out(torch.bmm(feats, param_out)))
        if self.with_proj:
            feats = self.activation(self.fc_norm(self.fc_layer(feats.flatten(1))))
        return feats


class _SelfAttention(nn.Module):
    """mmcv 1.x ``MultiheadAttention`` as DIIHead uses it: sequence-first, ``x + attn(x)``."""

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=attn_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # need_weights=True (mmcv's call) takes PyTorch's explicit softmax path; the fused
        # need_weights=False path differs by ~1e-6, which the box deltas amplify to ~1e-4 px
        out: torch.Tensor = self.attn(x, x, x)[0]
        return x + out


class _FFN(nn.Module):
    """mmcv 1.x ``FFN`` (``layers.0.0`` ... ``layers.1``) with its residual: ``x + ffn(x)``."""

    def __init__(
        self, embed_dims: int, feedforward_channels: int, num_fcs: int, act_cfg: Cfg, drop: float
    ) -> None:
        super().__init__()
        if num_fcs < 2:
            raise InvalidArgumentError(f"DIIHead: num_ffn_fcs must be >= 2, got {num_fcs}")
        layers: list[nn.Module] = []
        channels = embed_dims
        for _ in range(num_fcs - 1):
            layers.append(
                nn.Sequential(
                    nn.Linear(channels, feedforward_channels),
                    build_activation_layer(act_cfg),
                    nn.Dropout(drop),
                )
            )
            channels = feedforward_channels
        layers += [nn.Linear(feedforward_channels, embed_dims), nn.Dropout(drop)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.layers(x)
        return out


def _to_query_order(samples: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Rows given in sample order (positives, then negatives) moved to query ``order``."""
    out = torch.empty_like(samples)
    out[order] = samples
    return out


def _fc_tower(channels: int, count: int) -> nn.ModuleList:
    """``count`` times Linear (no bias), LayerNorm, ReLU."""
    layers = nn.ModuleList()
    for _ in range(count):
        layers.append(nn.Linear(channels, channels, bias=False))
        layers.append(build_norm_layer(_LN, channels)[1])
        layers.append(build_activation_layer(_RELU))
    return layers


@MODELS.register_module()
class DIIHead(BBoxHead):
    """Dynamic Instance Interactive head of Sparse R-CNN (``mmdet...DIIHead``, v2.28).

    Args:
        num_classes: Foreground classes.
        num_ffn_fcs: Linear layers of the FFN.
        num_heads: Heads of the self-attention.
        num_cls_fcs: Blocks of ``cls_fcs``.
        num_reg_fcs: Blocks of ``reg_fcs``.
        feedforward_channels: Hidden channels of the FFN.
        in_channels: Channels of the object features (and of the RoI features).
        dropout: Dropout of the attention, the dynamic conv's output and the FFN.
        ffn_act_cfg: Activation of the FFN.
        dynamic_conv_cfg: The ``DynamicConv`` config.
        loss_iou: IoU-type loss on the absolute boxes.
        **kwargs: ``BBoxHead`` arguments (``loss_cls``, ``loss_bbox``, ``bbox_coder``, ...);
            the head is always class-agnostic and regresses decoded boxes.

    Example:
        >>> head = DIIHead(num_classes=3, in_channels=16, feedforward_channels=32, num_heads=2,
        ...                dynamic_conv_cfg=dict(type='DynamicConv', in_channels=16,
        ...                                      feat_channels=4, out_channels=16),
        ...                loss_cls=dict(type='FocalLoss', use_sigmoid=True))
        >>> cls, deltas, obj, attn = head(torch.randn(2 * 5, 16, 7, 7), torch.randn(2, 5, 16))
        >>> cls.shape, deltas.shape, obj.shape
        (torch.Size([2, 5, 3]), torch.Size([2, 5, 4]), torch.Size([2, 5, 16]))
    """

    def __init__(
        self,
        num_classes: int = 80,
        num_ffn_fcs: int = 2,
        num_heads: int = 8,
        num_cls_fcs: int = 1,
        num_reg_fcs: int = 3,
        feedforward_channels: int = 2048,
        in_channels: int = 256,
        dropout: float = 0.0,
        ffn_act_cfg: Cfg = _RELU,
        dynamic_conv_cfg: Cfg | nn.Module = _DYNAMIC_CONV,
        loss_iou: Cfg | nn.Module = _GIOU,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        if init_cfg is not None:
            raise InvalidArgumentError(
                "DIIHead: init_cfg must be None (the head initialises itself)"
            )
        for fixed in ("reg_class_agnostic", "reg_decoded_bbox"):
            if not kwargs.pop(fixed, True):
                raise InvalidArgumentError(f"DIIHead: {fixed} must be True")
        # BBoxHead builds fc_cls/fc_reg first (their place in the state dict); replaced below
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            reg_class_agnostic=True,
            reg_decoded_bbox=True,
            with_avg_pool=True,
            **kwargs,
        )
        self.loss_iou = build_module(loss_iou, MODELS)
        self.attention = _SelfAttention(in_channels, num_heads, dropout)
        self.attention_norm = build_norm_layer(_LN, in_channels)[1]
        self.instance_interactive_conv = build_module(dynamic_conv_cfg, MODELS)
        self.instance_interactive_conv_dropout = nn.Dropout(dropout)
        self.instance_interactive_conv_norm = build_norm_layer(_LN, in_channels)[1]
        self.ffn = _FFN(in_channels, feedforward_channels, num_ffn_fcs, ffn_act_cfg, dropout)
        self.ffn_norm = build_norm_layer(_LN, in_channels)[1]
        self.cls_fcs = _fc_tower(in_channels, num_cls_fcs)
        self.use_sigmoid = bool(getattr(self.loss_cls, "use_sigmoid", False))
        self.fc_cls = nn.Linear(in_channels, num_classes if self.use_sigmoid else num_classes + 1)
        self.reg_fcs = _fc_tower(in_channels, num_reg_fcs)
        self.fc_reg = nn.Linear(in_channels, 4)
        del self.avg_pool  # only there to keep BBoxHead's fc layers small
        self.with_avg_pool = False

    def init_weights(self) -> None:
        """Xavier-uniform for every matrix, PyTorch's defaults elsewhere, prior-0.01 class bias
        with a sigmoid loss (v2)."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        bias = self.fc_cls.bias
        if self.use_sigmoid and isinstance(bias, torch.Tensor):
            nn.init.constant_(bias, bias_init_with_prob(0.01))

    def forward(  # type: ignore[override]  # v2's (roi_feat, proposal_feat) signature
        self, roi_feat: torch.Tensor, proposal_feat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One stage on ``N`` images of ``P`` proposals.

        Args:
            roi_feat: ``Tensor[N * P, C, S, S]`` pooled RoI features.
            proposal_feat: ``Tensor[N, P, C]`` object features of the previous stage.

        Returns:
            ``cls_score [N, P, num_classes(+1)]``, ``bbox_delta [N, P, 4]``, the new object
            features ``[N, P, C]`` and the attention output ``[N, P, C]`` (QueryInst's mask
            branch uses it).
        """
        n, num_proposals = proposal_feat.shape[:2]
        attn_feats = self.attention_norm(self.attention(proposal_feat.transpose(0, 1)))
        attn_feats = attn_feats.transpose(0, 1)
        feat = attn_feats.reshape(-1, self.in_channels)
        feat = feat + self.instance_interactive_conv_dropout(
            self.instance_interactive_conv(feat, roi_feat)
        )
        obj_feat = self.ffn_norm(self.ffn(self.instance_interactive_conv_norm(feat)))
        cls_feat = reg_feat = obj_feat
        for layer in self.cls_fcs:
            cls_feat = layer(cls_feat)
        for layer in self.reg_fcs:
            reg_feat = layer(reg_feat)
        cls_score = self.fc_cls(cls_feat).view(n, num_proposals, -1)
        bbox_delta = self.fc_reg(reg_feat).view(n, num_proposals, 4)
        return cls_score, bbox_delta, obj_feat.view(n, num_proposals, -1), attn_feats

    def get_targets(
        self,
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        rcnn_train_cfg: Cfg,
        concat: bool = True,
    ) -> tuple[Any, ...]:
        """Labels, label weights, box targets (absolute ``x1, y1, x2, y2``) and box weights of
        every query, in query order (``BBoxHead``'s targets put each image's positives first;
        they are moved back to ``pos_inds`` and ``neg_inds``)."""
        per_image = super().get_targets(
            sampling_results, gt_bboxes, gt_labels, rcnn_train_cfg, concat=False
        )
        orders = [torch.cat([r.pos_inds, r.neg_inds]) for r in sampling_results]
        columns = tuple(
            [_to_query_order(t, order) for t, order in zip(items, orders, strict=True)]
            for items in per_image
        )
        if concat:
            return tuple(torch.cat(items, 0) for items in columns)
        return columns

    def loss(  # type: ignore[override]  # v2's DIIHead.loss takes imgs_whwh, no rois
        self,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        bbox_weights: torch.Tensor,
        imgs_whwh: torch.Tensor,
        reduction_override: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``pos_acc``, ``loss_bbox``, ``loss_iou`` (see the module docstring).

        Args:
            cls_score: ``Tensor[M, num_classes(+1)]`` for all ``M`` queries of the batch.
            bbox_pred: ``Tensor[M, 4]`` decoded absolute boxes.
            labels, label_weights, bbox_targets, bbox_weights: From :meth:`get_targets`.
            imgs_whwh: ``Tensor[M, 4]`` (or ``[N, P, 4]``) each query's image ``(w, h, w, h)``.
            reduction_override: Passed to the classification loss.
        """
        losses: dict[str, torch.Tensor] = {}
        pos = (labels >= 0) & (labels < self.num_classes)
        avg_factor = reduce_mean(pos.sum().float())
        if cls_score.numel() > 0:
            losses["loss_cls"] = self.loss_cls(
                cls_score,
                labels,
                label_weights,
                avg_factor=avg_factor,
                reduction_override=reduction_override,
            )
            losses["pos_acc"] = accuracy(cls_score[pos], labels[pos])
        if pos.any():
            pos_pred = bbox_pred.reshape(-1, 4)[pos]
            whwh = imgs_whwh.reshape(-1, 4)[pos]
            losses["loss_bbox"] = self.loss_bbox(
                pos_pred / whwh,
                bbox_targets[pos] / whwh,
                bbox_weights[pos],
                avg_factor=avg_factor,
            )
            losses["loss_iou"] = self.loss_iou(
                pos_pred, bbox_targets[pos], bbox_weights[pos], avg_factor=avg_factor
            )
        else:
            losses["loss_bbox"] = bbox_pred.sum() * 0
            losses["loss_iou"] = bbox_pred.sum() * 0
        return losses
