"""``TOODHead``: the task-aligned head (T-head) of TOOD (Feng et al. 2021), MMDetection v2.28.

Per level, ``stacked_convs`` shared 3x3 ConvModules (``inter_convs``; the first ``num_dcn`` are
modulated deformable) produce task-interactive features, concatenated. Two
:class:`TaskDecomposition` modules weight the concatenation by a layer attention (computed
from its global average) and reduce it to the classification and regression features. The
class score is ``sqrt(sigmoid(tood_cls) * sigmoid(cls_prob_module))``, a probability. The box
is ``distance2bbox(anchor centre / stride, Scale(exp(tood_reg)))`` (``anchor_type
'anchor_free'``) or the delta-decoded anchor divided by the stride (``'anchor_based'``), in
stride units, then resampled per coordinate at the offsets of ``reg_offset_module`` (a
depthwise 1x1 deformable conv with unit weight, i.e. bilinear sampling); a resampled box whose
corners cross falls back to the unsampled one. Boxes are multiplied by the stride in the loss
and at test time, never clipped.

Training switches by epoch (``self.epoch``, set by ``SetEpochInfoHook`` through
``TOOD.set_epoch``; 0 for iteration-based runs): below ``train_cfg.initial_epoch`` the anchors
are assigned by ``initial_assigner`` (ATSS), the classification loss is ``initial_loss_cls``
(focal on probabilities) and the box loss is weighted by the centerness target; from then on
:class:`TaskAlignedAssigner` assigns from the predictions, the classification loss is
``loss_cls`` (quality focal) against the normalised alignment metrics, which also weight the
box loss. Both are averaged over their (all-reduced) sums of targets and weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.atss_head import ATSSHead
from detforge.models.dense_heads.tood_targets import task_aligned_targets
from detforge.models.layers import ConvModule
from detforge.models.layers.scale import Scale
from detforge.models.layers.weight_init import bias_init_with_prob, normal_init
from detforge.models.utils import filter_scores_and_topk, multi_apply
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import distance2bbox
from detforge.utils.dist import reduce_mean

__all__ = ["TOODHead", "TaskDecomposition", "sigmoid_geometric_mean"]

_PROB_FOCAL: Cfg = MappingProxyType(
    dict(type="FocalLoss", use_sigmoid=True, activated=True, gamma=2.0, alpha=0.25, loss_weight=1)
)
_ANCHOR_TYPES = ("anchor_free", "anchor_based")


class _SigmoidGeometricMean(torch.autograd.Function):
    """``sqrt(sigmoid(x) * sigmoid(y))`` with v2's closed-form gradient (stable where the
    product underflows)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_sigmoid, y_sigmoid = x.sigmoid(), y.sigmoid()
        z = (x_sigmoid * y_sigmoid).sqrt()
        ctx.save_for_backward(x_sigmoid, y_sigmoid, z)
        return z

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_sigmoid, y_sigmoid, z = ctx.saved_tensors
        grad_x = grad_output * z * (1 - x_sigmoid) / 2
        grad_y = grad_output * z * (1 - y_sigmoid) / 2
        return grad_x, grad_y


def sigmoid_geometric_mean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sqrt(sigmoid(x) * sigmoid(y))`` (broadcasting), with v2's gradient.

    Example:
        >>> sigmoid_geometric_mean(torch.zeros(1), torch.zeros(1))
        tensor([0.5000])
    """
    out: torch.Tensor = _SigmoidGeometricMean.apply(x, y)
    return out


class TaskDecomposition(nn.Module):
    """Layer attention over the stacked inter-conv features, then a 1x1 reduction (v2 keys
    ``layer_attention.{0,2}``, ``reduction_conv.conv``/``.gn``).

    Args:
        feat_channels: Channels of each inter conv (and of the output).
        stacked_convs: Number of stacked inter convs.
        la_down_rate: Channel reduction of the attention's hidden layer.
        conv_cfg: Conv config of the reduction conv.
        norm_cfg: Norm config of the reduction conv (its conv has a bias only without one).
    """

    def __init__(
        self,
        feat_channels: int,
        stacked_convs: int,
        la_down_rate: int = 8,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
    ) -> None:
        super().__init__()
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.in_channels = feat_channels * stacked_convs
        self.with_norm = norm_cfg is not None
        hidden = self.in_channels // la_down_rate
        self.layer_attention = nn.Sequential(
            nn.Conv2d(self.in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, stacked_convs, 1, padding=0),
            nn.Sigmoid(),
        )
        self.reduction_conv = ConvModule(
            self.in_channels,
            feat_channels,
            1,
            stride=1,
            padding=0,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            bias=norm_cfg is None,
        )

    def init_weights(self) -> None:
        for m in self.layer_attention.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.001)
        normal_init(self.reduction_conv.conv, std=0.01)

    def forward(self, feat: torch.Tensor, avg_feat: torch.Tensor | None = None) -> torch.Tensor:
        """``feat [B, S*C, H, W]`` → ``[B, C, H, W]``."""
        b, _, h, w = feat.shape
        if avg_feat is None:
            avg_feat = F.adaptive_avg_pool2d(feat, (1, 1))
        weight = self.layer_attention(avg_feat)
        # scale the reduction conv's weight per layer instead of the (larger) features
        reduction = cast(nn.Conv2d, self.reduction_conv.conv).weight
        conv_weight = weight.reshape(b, 1, self.stacked_convs, 1) * reduction.reshape(
            1, self.feat_channels, self.stacked_convs, self.feat_channels
        )
        conv_weight = conv_weight.reshape(b, self.feat_channels, self.in_channels)
        out = torch.bmm(conv_weight, feat.reshape(b, self.in_channels, h * w))
        out = out.reshape(b, self.feat_channels, h, w)
        if self.with_norm:
            norm = self.reduction_conv.norm
            assert norm is not None
            out = norm(out)
        activated: torch.Tensor = self.reduction_conv.activate(out)
        return activated


def _anchor_centers(anchors: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [(anchors[:, 2] + anchors[:, 0]) / 2, (anchors[:, 3] + anchors[:, 1]) / 2], dim=-1
    )


@MODELS.register_module()
class TOODHead(ATSSHead):
    """TOOD's T-head (see the module docstring).

    Takes :class:`ATSSHead`'s arguments plus:

    Args:
        num_dcn: Leading inter convs that are modulated deformable (``DCNv2``, 4 groups).
        anchor_type: ``'anchor_free'`` or ``'anchor_based'``.
        initial_loss_cls: Classification loss before ``initial_epoch`` (default focal loss on
            probabilities).

    ``train_cfg`` adds ``initial_epoch``, ``initial_assigner``, ``alpha`` and ``beta`` to the
    anchor heads' keys; ``assigner`` is the :class:`TaskAlignedAssigner`.

    Raises:
        ValueError: an unknown ``anchor_type``.

    Example:
        >>> head = TOODHead(num_classes=2, in_channels=8, feat_channels=8, stacked_convs=2,
        ...                 norm_cfg=dict(type='GN', num_groups=4),
        ...                 anchor_generator=dict(type='AnchorGenerator', ratios=[1.0],
        ...                     octave_base_scale=8, scales_per_octave=1, strides=[8]))
        >>> cls, reg = head([torch.zeros(1, 8, 4, 4)])
        >>> tuple(cls[0].shape), tuple(reg[0].shape)
        ((1, 2, 4, 4), (1, 4, 4, 4))
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = AnchorHead.TRAIN_CFG_KEYS | {
        "initial_epoch",
        "initial_assigner",
        "alpha",
        "beta",
    }

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        num_dcn: int = 0,
        anchor_type: str = "anchor_free",
        initial_loss_cls: Cfg | nn.Module = _PROB_FOCAL,
        **kwargs: Any,
    ) -> None:
        if anchor_type not in _ANCHOR_TYPES:
            raise InvalidArgumentError(
                f"TOODHead: anchor_type={anchor_type!r} is not one of {_ANCHOR_TYPES}"
            )
        self.num_dcn = num_dcn
        self.anchor_type = anchor_type
        self.epoch = 0  # set by SetEpochInfoHook (through TOOD.set_epoch)
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        if self.train_cfg:
            self.initial_epoch = int(self.train_cfg["initial_epoch"])
            self.initial_assigner = build_module(self.train_cfg["initial_assigner"], TASK_UTILS)
            self.initial_loss_cls = build_module(initial_loss_cls, MODELS)
            self.alignment_assigner = self.assigner
            self.assigner = self.initial_assigner  # v2's attribute during the initial epochs
            self.alpha = self.train_cfg["alpha"]
            self.beta = self.train_cfg["beta"]

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.inter_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            conv_cfg = dict(type="DCNv2", deform_groups=4) if i < self.num_dcn else self.conv_cfg
            self.inter_convs.append(
                ConvModule(
                    self.in_channels if i == 0 else self.feat_channels,
                    self.feat_channels,
                    3,
                    stride=1,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=self.norm_cfg,
                )
            )
        la_down_rate = self.stacked_convs * 8
        self.cls_decomp = TaskDecomposition(
            self.feat_channels, self.stacked_convs, la_down_rate, self.conv_cfg, self.norm_cfg
        )
        self.reg_decomp = TaskDecomposition(
            self.feat_channels, self.stacked_convs, la_down_rate, self.conv_cfg, self.norm_cfg
        )
        a = self.num_base_priors
        self.tood_cls = nn.Conv2d(self.feat_channels, a * self.cls_out_channels, 3, padding=1)
        self.tood_reg = nn.Conv2d(self.feat_channels, a * 4, 3, padding=1)
        stacked = self.feat_channels * self.stacked_convs
        quarter = self.feat_channels // 4
        self.cls_prob_module = nn.Sequential(
            nn.Conv2d(stacked, quarter, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(quarter, 1, 3, padding=1),
        )
        self.reg_offset_module = nn.Sequential(
            nn.Conv2d(stacked, quarter, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(quarter, 8, 3, padding=1),
        )
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    def init_weights(self) -> None:
        """v2's fixed initialisation (``init_cfg`` is not used, as in v2)."""
        bias_cls = bias_init_with_prob(0.01)
        for m in self.inter_convs:
            normal_init(cast(nn.Module, m.conv), std=0.01)
        for m in self.cls_prob_module:
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.01)
        for m in self.reg_offset_module:
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.001)
        normal_init(self.cls_prob_module[-1], std=0.01, bias=bias_cls)
        self.cls_decomp.init_weights()
        self.reg_decomp.init_weights()
        normal_init(self.tood_cls, std=0.01, bias=bias_cls)
        normal_init(self.tood_reg, std=0.01)

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, A*C, H, W]`` (probabilities) and ``bbox_pred
        [B, A*4, H, W]`` (boxes ``x1, y1, x2, y2`` in units of the level's stride)."""
        cls_scores, bbox_preds = [], []
        for idx, (x, scale, stride) in enumerate(
            zip(feats, self.scales, self.prior_generator.strides, strict=True)
        ):
            b, _, h, w = x.shape
            anchor = self.prior_generator.single_level_grid_priors((h, w), idx, device=x.device)
            anchor = torch.cat([anchor for _ in range(b)])
            inter_feats = []
            for inter_conv in self.inter_convs:
                x = inter_conv(x)
                inter_feats.append(x)
            feat = torch.cat(inter_feats, 1)
            avg_feat = F.adaptive_avg_pool2d(feat, (1, 1))
            cls_feat = self.cls_decomp(feat, avg_feat)
            reg_feat = self.reg_decomp(feat, avg_feat)
            cls_score = sigmoid_geometric_mean(self.tood_cls(cls_feat), self.cls_prob_module(feat))
            if self.anchor_type == "anchor_free":
                reg_dist = scale(self.tood_reg(reg_feat).exp()).float()
                reg_dist = reg_dist.permute(0, 2, 3, 1).reshape(-1, 4)
                reg_bbox = distance2bbox(_anchor_centers(anchor) / stride[0], reg_dist)
                reg_bbox = reg_bbox.reshape(b, h, w, 4).permute(0, 3, 1, 2)
            else:
                reg_dist = scale(self.tood_reg(reg_feat)).float()
                reg_dist = reg_dist.permute(0, 2, 3, 1).reshape(-1, 4)
                reg_bbox = self.bbox_coder.decode(anchor, reg_dist)
                reg_bbox = reg_bbox.reshape(b, h, w, 4).permute(0, 3, 1, 2) / stride[0]
            reg_offset = self.reg_offset_module(feat)
            bbox_pred = self.deform_sampling(reg_bbox.contiguous(), reg_offset.contiguous())
            # resampling can cross a box's corners (and make the GIoU loss negative)
            invalid = (bbox_pred[:, [0]] > bbox_pred[:, [2]]) | (
                bbox_pred[:, [1]] > bbox_pred[:, [3]]
            )
            bbox_pred = torch.where(invalid.expand_as(bbox_pred), reg_bbox, bbox_pred)
            cls_scores.append(cls_score)
            bbox_preds.append(bbox_pred)
        return cls_scores, bbox_preds

    def deform_sampling(self, feat: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Bilinear samples of each channel of ``feat`` at its own offsets (a depthwise 1x1
        deformable conv with unit weight; ``offset`` has 2 channels per channel of ``feat``)."""
        weight = feat.new_ones(feat.size(1), 1, 1, 1)
        sampled: torch.Tensor = deform_conv2d(feat, offset, weight, stride=1, padding=0)
        return sampled

    def anchor_center(self, anchors: torch.Tensor) -> torch.Tensor:
        """``Tensor[N, 2]`` centres ``x, y`` of ``anchors [N, 4]``."""
        return _anchor_centers(anchors)

    # ------------------------------------------------------------------ losses
    def loss_single(  # type: ignore[override]  # v2's signature: alignment metrics, stride
        self,
        anchors: torch.Tensor,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        alignment_metrics: torch.Tensor,
        stride: Sequence[int],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level's ``(loss_cls, loss_bbox)`` (unnormalised) and their normalisers."""
        if stride[0] != stride[1]:
            raise InvalidArgumentError(f"TOODHead: the stride {tuple(stride)} is not square")
        anchors = anchors.reshape(-1, 4)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).contiguous()
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        bbox_targets = bbox_targets.reshape(-1, 4)
        labels = labels.reshape(-1)
        alignment_metrics = alignment_metrics.reshape(-1)
        label_weights = label_weights.reshape(-1)
        initial = self.epoch < self.initial_epoch
        if initial:
            loss_cls = self.initial_loss_cls(cls_score, labels, label_weights, avg_factor=1.0)
        else:
            loss_cls = self.loss_cls(
                cls_score, (labels, alignment_metrics), label_weights, avg_factor=1.0
            )
        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if len(pos_inds) > 0:
            pos_targets = bbox_targets[pos_inds]
            if initial:
                weight = self.centerness_target(anchors[pos_inds], pos_targets)
            else:
                weight = alignment_metrics[pos_inds]
            loss_bbox = self.loss_bbox(
                bbox_pred[pos_inds], pos_targets / stride[0], weight=weight, avg_factor=1.0
            )
        else:
            loss_bbox = bbox_pred.sum() * 0
            weight = bbox_targets.new_tensor(0.0)
        return loss_cls, loss_bbox, alignment_metrics.sum(), weight.sum()

    def loss(  # type: ignore[override]  # no centerness maps
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls`` and ``loss_bbox``, one tensor per level (see the module docstring).

        Raises:
            ValueError: the head has no ``train_cfg``.
            RuntimeError: an image has no anchor inside it.
        """
        if not self.train_cfg:
            raise InvalidArgumentError("TOODHead needs a train_cfg for its losses")
        strides = self.prior_generator.strides
        if self.epoch < self.initial_epoch:
            t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
            anchors, labels, label_weights, bbox_targets = (
                t.anchors,
                t.labels,
                t.label_weights,
                t.bbox_targets,
            )
            metrics = [weights[..., 0] for weights in t.bbox_weights]  # 1 for positives
        else:
            b = len(img_metas)
            flat_scores = torch.cat(
                [s.permute(0, 2, 3, 1).reshape(b, -1, self.cls_out_channels) for s in cls_scores], 1
            )
            flat_boxes = torch.cat(
                [
                    p.permute(0, 2, 3, 1).reshape(b, -1, 4) * stride[0]
                    for p, stride in zip(bbox_preds, strides, strict=True)
                ],
                1,
            )
            anchor_list, valid_flag_list = self.get_anchors(
                self._featmap_sizes(cls_scores), img_metas, device=cls_scores[0].device
            )
            aligned = task_aligned_targets(
                flat_scores,
                flat_boxes,
                anchor_list,
                valid_flag_list,
                gt_bboxes,
                img_metas,
                assigner=self.alignment_assigner,
                sampler=self.sampler,
                num_classes=self.num_classes,
                train_cfg=self.train_cfg,
                gt_bboxes_ignore_list=gt_bboxes_ignore,
                gt_labels_list=gt_labels,
            )
            if aligned is None:
                raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
            anchors, labels, label_weights, bbox_targets, metrics = aligned
        losses_cls, losses_bbox, cls_avg, bbox_avg = multi_apply(
            self.loss_single,
            anchors,
            cls_scores,
            bbox_preds,
            labels,
            label_weights,
            bbox_targets,
            metrics,
            strides,
        )
        cls_avg_factor = reduce_mean(sum(cls_avg)).clamp_(min=1).item()
        bbox_avg_factor = reduce_mean(sum(bbox_avg)).clamp_(min=1).item()
        return dict(
            loss_cls=[loss / cls_avg_factor for loss in losses_cls],
            loss_bbox=[loss / bbox_avg_factor for loss in losses_bbox],
        )

    # ------------------------------------------------------------ inference
    def _get_bboxes_single(
        self,
        cls_score_list: Sequence[torch.Tensor],
        bbox_pred_list: Sequence[torch.Tensor],
        score_factor_list: Sequence[torch.Tensor | None],
        mlvl_priors: Sequence[torch.Tensor],
        img_meta: ImgMeta,
        cfg: Cfg | None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> Any:
        """The scores are probabilities and the boxes need only the stride: per level the
        ``nms_pre`` best pairs above ``score_thr``, then v2's post-processing (no clipping)."""
        cfg = self._test_cfg(cfg)
        nms_pre = cfg.get("nms_pre", -1)
        mlvl_bboxes, mlvl_scores, mlvl_labels = [], [], []
        for cls_score, bbox_pred, priors, stride in zip(
            cls_score_list, bbox_pred_list, mlvl_priors, self.prior_generator.strides, strict=True
        ):
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4) * stride[0]
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            scores, labels, _, filtered = filter_scores_and_topk(
                scores, cfg["score_thr"], nms_pre, dict(bbox_pred=bbox_pred, priors=priors)
            )
            assert filtered is not None
            mlvl_bboxes.append(filtered["bbox_pred"])
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
        return self._bbox_post_process(
            mlvl_scores,
            mlvl_labels,
            mlvl_bboxes,
            img_meta["scale_factor"],
            cfg,
            rescale=rescale,
            with_nms=with_nms,
        )
