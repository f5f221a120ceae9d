"""``YOLOXHead``: the decoupled anchor-free head of YOLOX (Ge et al. 2021), MMDetection v2.28
numerics and state_dict layout.

Per level, two conv towers (``multi_level_cls_convs``, ``multi_level_reg_convs``) feed three
1x1 predictors: class logits (``multi_level_conv_cls``), box ``(dx, dy, log w, log h)`` in units
of the stride (``multi_level_conv_reg``) and objectness (``multi_level_conv_obj``, on the
regression tower). Priors are the grid points ``(x * s, y * s)`` without offset.

- Decoding (:func:`yolox_decode`): centre ``prior + d * s``, size ``exp(log wh) * s``; boxes are
  not clipped.
- Targets (:func:`yolox_targets_single`), per image, without gradient: :class:`SimOTAAssigner`
  sees the priors shifted by half a stride, the scores ``sigmoid(cls) * sigmoid(obj)`` and the
  decoded boxes. A positive's class target is the one-hot label times the IoU of its prediction
  (IoU-aware), its objectness target 1 (0 for every other prior), its box target the ground
  truth, and its L1 target the ground truth encoded back (``(c - prior) / s``,
  ``log(wh / s + 1e-8)``).
- Losses (sums divided by the batch's positive count averaged over ranks, at least 1):
  ``loss_cls`` (sigmoid BCE, positives), ``loss_bbox`` (IoU loss on decoded boxes, positives),
  ``loss_obj`` (sigmoid BCE, every prior) and, while ``use_l1`` is on (``YOLOXModeSwitchHook``
  turns it on for the last epochs), ``loss_l1`` on the raw predictions.
- Test: ``score = max_c sigmoid(cls) * sigmoid(obj)``, kept when ``>= score_thr``, then
  class-aware NMS; no ``nms_pre`` and no ``max_per_img`` (v2). With ``rescale`` the boxes are
  divided by ``scale_factor`` before NMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.layers import ConvModule
from detforge.models.layers.csp_layer import SWISH, TORCH_DEFAULT_CONV_INIT, YOLO_BN
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.models.layers.weight_init import bias_init_with_prob
from detforge.models.task_modules.prior_generators import MlvlPointGenerator
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_xyxy_to_cxcywh

__all__ = ["YOLOXHead", "yolox_decode", "yolox_l1_target", "yolox_targets_single"]

_SUM_BCE: Cfg = MappingProxyType(
    dict(type="CrossEntropyLoss", use_sigmoid=True, reduction="sum", loss_weight=1.0)
)
_SQUARE_IOU: Cfg = MappingProxyType(
    dict(type="IoULoss", mode="square", eps=1e-16, reduction="sum", loss_weight=5.0)
)
_SUM_L1: Cfg = MappingProxyType(dict(type="L1Loss", reduction="sum", loss_weight=1.0))


def yolox_decode(priors: torch.Tensor, bbox_preds: torch.Tensor) -> torch.Tensor:
    """Boxes ``x1, y1, x2, y2`` from predictions ``[..., N, 4]`` and priors ``[N, 4]``
    (``x, y, stride_w, stride_h``).

    Example:
        >>> yolox_decode(torch.tensor([[8., 8., 8., 8.]]), torch.tensor([[0.5, 0., 0., 0.]]))
        tensor([[ 8.,  4., 16., 12.]])
    """
    xys = bbox_preds[..., :2] * priors[:, 2:] + priors[:, :2]
    whs = bbox_preds[..., 2:].exp() * priors[:, 2:]
    return torch.stack(
        [
            xys[..., 0] - whs[..., 0] / 2,
            xys[..., 1] - whs[..., 1] / 2,
            xys[..., 0] + whs[..., 0] / 2,
            xys[..., 1] + whs[..., 1] / 2,
        ],
        -1,
    )


def yolox_l1_target(
    gt_bboxes: torch.Tensor, priors: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """The raw prediction that decodes to ``gt_bboxes`` ``[P, 4]`` at ``priors`` ``[P, 4]``
    (``log(wh / s + eps)`` for the size).

    Example:
        >>> yolox_l1_target(torch.tensor([[8., 4., 16., 12.]]), torch.tensor([[8., 8., 8., 8.]]))
        tensor([[0.5000, 0.0000, 0.0000, 0.0000]])
    """
    cxcywh = bbox_xyxy_to_cxcywh(gt_bboxes)
    xy = (cxcywh[:, :2] - priors[:, :2]) / priors[:, 2:]
    wh = torch.log(cxcywh[:, 2:] / priors[:, 2:] + eps)
    return torch.cat([xy, wh], dim=1)


@torch.no_grad()
def yolox_targets_single(
    assigner: Any,
    cls_preds: torch.Tensor,
    objectness: torch.Tensor,
    priors: torch.Tensor,
    decoded_bboxes: torch.Tensor,
    gt_bboxes: torch.Tensor,
    gt_labels: torch.Tensor,
    with_l1: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """One image's targets (see the module docstring).

    Args:
        assigner: A SimOTA-like assigner (``assign(scores, priors, boxes, gts, labels)``).
        cls_preds: ``Tensor[N, C]`` class logits.
        objectness: ``Tensor[N]`` objectness logits.
        priors: ``Tensor[N, 4]`` (``x, y, stride_w, stride_h``).
        decoded_bboxes: ``Tensor[N, 4]`` predicted boxes.
        gt_bboxes: ``Tensor[K, 4]``.
        gt_labels: ``Tensor[K]``.
        with_l1: Compute the L1 targets (else they are zeros).

    Returns:
        ``(positive mask [N], class targets [P, C], objectness targets [N, 1], box targets
        [P, 4], L1 targets [P, 4], P)``.
    """
    num_priors, num_classes = cls_preds.shape
    gt_bboxes = gt_bboxes.to(decoded_bboxes.dtype)
    if gt_labels.numel() == 0:
        return (
            cls_preds.new_zeros(num_priors).bool(),
            cls_preds.new_zeros((0, num_classes)),
            cls_preds.new_zeros((num_priors, 1)),
            cls_preds.new_zeros((0, 4)),
            cls_preds.new_zeros((0, 4)),
            0,
        )
    # assigned on the cell centres (half a stride in), regressed from the cell corners
    offset_priors = torch.cat([priors[:, :2] + priors[:, 2:] * 0.5, priors[:, 2:]], dim=-1)
    result = assigner.assign(
        cls_preds.sigmoid() * objectness.unsqueeze(1).sigmoid(),
        offset_priors,
        decoded_bboxes,
        gt_bboxes,
        gt_labels,
    )
    pos_inds = torch.nonzero(result.gt_inds > 0, as_tuple=False).squeeze(-1)
    pos_gt = result.gt_inds[pos_inds] - 1
    cls_target = F.one_hot(gt_labels[pos_gt].long(), num_classes) * result.max_overlaps[
        pos_inds
    ].unsqueeze(-1)
    obj_target = torch.zeros_like(objectness).unsqueeze(-1)
    obj_target[pos_inds] = 1
    bbox_target = gt_bboxes[pos_gt]
    if with_l1:
        l1_target = yolox_l1_target(bbox_target, priors[pos_inds])
    else:
        l1_target = cls_preds.new_zeros((len(pos_inds), 4))
    pos_mask = torch.zeros_like(objectness, dtype=torch.bool)
    pos_mask[pos_inds] = True
    return pos_mask, cls_target, obj_target, bbox_target, l1_target, len(pos_inds)


@MODELS.register_module()
class YOLOXHead(BaseDenseHead):
    """YOLOX head (see the module docstring).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each input level.
        feat_channels: Channels of the towers.
        stacked_convs: Convs per tower.
        strides: Stride of each level.
        use_depthwise: Depthwise separable tower convs.
        dcn_on_last_conv: Modulated deformable last tower conv.
        conv_bias: Tower conv bias (``'auto'``: only without norm).
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers (BN momentum 0.03, eps 1e-3).
        act_cfg: Activation of the towers (Swish).
        loss_cls: Class loss (sigmoid BCE, sum).
        loss_bbox: Box loss on decoded boxes (IoU loss ``mode='square'``, sum, weight 5).
        loss_obj: Objectness loss (sigmoid BCE, sum).
        loss_l1: The extra L1 loss on raw predictions (sum), used while ``use_l1``.
        train_cfg: ``assigner`` (SimOTA).
        test_cfg: ``score_thr`` and ``nms``.
        init_cfg: Default: PyTorch's kaiming-uniform for every ``Conv2d``; the class and
            objectness biases then start at the 0.01 prior.

    Example:
        >>> head = YOLOXHead(num_classes=3, in_channels=8, feat_channels=8, strides=[8])
        >>> cls, reg, obj = head([torch.zeros(1, 8, 4, 4)])
        >>> tuple(cls[0].shape), tuple(reg[0].shape), tuple(obj[0].shape)
        ((1, 3, 4, 4), (1, 4, 4, 4), (1, 1, 4, 4))
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset({"assigner"})
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = frozenset({"score_thr", "nms"})

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 2,
        strides: Sequence[int] = (8, 16, 32),
        use_depthwise: bool = False,
        dcn_on_last_conv: bool = False,
        conv_bias: bool | str = "auto",
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = YOLO_BN,
        act_cfg: Cfg | None = SWISH,
        loss_cls: Cfg | nn.Module = _SUM_BCE,
        loss_bbox: Cfg | nn.Module = _SQUARE_IOU,
        loss_obj: Cfg | nn.Module = _SUM_BCE,
        loss_l1: Cfg | nn.Module = _SUM_L1,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        if conv_bias != "auto" and not isinstance(conv_bias, bool):
            raise InvalidArgumentError(
                f"YOLOXHead: conv_bias must be 'auto' or a bool, got {conv_bias!r}"
            )
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            bbox_coder=None,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=TORCH_DEFAULT_CONV_INIT if init_cfg is None else init_cfg,
        )
        self.cls_out_channels = num_classes  # sigmoid scores whatever loss_cls says (v2)
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.use_depthwise = use_depthwise
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.act_cfg = plain_cfg(act_cfg)
        self.loss_obj = build_module(loss_obj, MODELS)
        self.loss_l1 = build_module(loss_l1, MODELS)
        self.use_l1 = False  # turned on by YOLOXModeSwitchHook
        self.prior_generator = MlvlPointGenerator(self.strides, offset=0)
        self.assigner: Any = None
        if train_cfg:
            self.assigner = build_module(train_cfg["assigner"], TASK_UTILS)
        self._init_layers()

    def _tower(self) -> nn.Sequential:
        """``stacked_convs`` 3x3 conv-norm-act modules (v2's ``_build_stacked_convs``)."""
        conv: Any = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        last = self.stacked_convs - 1
        return nn.Sequential(
            *(
                conv(
                    self.in_channels if i == 0 else self.feat_channels,
                    self.feat_channels,
                    3,
                    stride=1,
                    padding=1,
                    conv_cfg=dict(type="DCNv2")
                    if self.dcn_on_last_conv and i == last
                    else self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                    bias=self.conv_bias,
                )
                for i in range(self.stacked_convs)
            )
        )

    def _init_layers(self) -> None:
        self.multi_level_cls_convs = nn.ModuleList()
        self.multi_level_reg_convs = nn.ModuleList()
        self.multi_level_conv_cls = nn.ModuleList()
        self.multi_level_conv_reg = nn.ModuleList()
        self.multi_level_conv_obj = nn.ModuleList()
        for _ in self.strides:
            self.multi_level_cls_convs.append(self._tower())
            self.multi_level_reg_convs.append(self._tower())
            self.multi_level_conv_cls.append(nn.Conv2d(self.feat_channels, self.num_classes, 1))
            self.multi_level_conv_reg.append(nn.Conv2d(self.feat_channels, 4, 1))
            self.multi_level_conv_obj.append(nn.Conv2d(self.feat_channels, 1, 1))

    def init_weights(self) -> None:
        super().init_weights()
        bias = bias_init_with_prob(0.01)
        for conv in [*self.multi_level_conv_cls, *self.multi_level_conv_obj]:
            if isinstance(conv, nn.Conv2d) and conv.bias is not None:
                conv.bias.data.fill_(bias)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: class logits ``[B, C, H, W]``, boxes ``[B, 4, H, W]``, objectness
        ``[B, 1, H, W]``."""
        if len(feats) != len(self.strides):
            raise InvalidArgumentError(
                f"YOLOXHead: {len(feats)} feature levels for strides {self.strides}"
            )
        cls_scores, bbox_preds, objectnesses = [], [], []
        for level, x in enumerate(feats):
            cls_feat = self.multi_level_cls_convs[level](x)
            reg_feat = self.multi_level_reg_convs[level](x)
            cls_scores.append(self.multi_level_conv_cls[level](cls_feat))
            bbox_preds.append(self.multi_level_conv_reg[level](reg_feat))
            objectnesses.append(self.multi_level_conv_obj[level](reg_feat))
        return cls_scores, bbox_preds, objectnesses

    def _flatten(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        objectnesses: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All levels as ``[B, N, C]`` logits, ``[B, N, 4]`` boxes, ``[B, N]`` objectness and
        the priors ``[N, 4]`` (``x, y, stride_w, stride_h``)."""
        if not len(cls_scores) == len(bbox_preds) == len(objectnesses):
            raise InvalidArgumentError(
                f"YOLOXHead: {len(cls_scores)} score, {len(bbox_preds)} box and "
                f"{len(objectnesses)} objectness levels"
            )
        num_imgs = cls_scores[0].size(0)
        priors = self.prior_generator.grid_priors(
            self._featmap_sizes(cls_scores),
            dtype=cls_scores[0].dtype,
            device=cls_scores[0].device,
            with_stride=True,
        )

        def flat(maps: Sequence[torch.Tensor], channels: int) -> torch.Tensor:
            return torch.cat(
                [m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for m in maps], dim=1
            )

        return (
            flat(cls_scores, self.cls_out_channels),
            flat(bbox_preds, 4),
            flat(objectnesses, 1).squeeze(-1),
            torch.cat(priors),
        )

    def get_bboxes(  # type: ignore[override]
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        objectnesses: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta] | None = None,
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` (see the module docstring), or
        ``(bboxes, scores, labels)`` above ``score_thr`` without NMS."""
        if img_metas is None:
            raise InvalidArgumentError("YOLOXHead.get_bboxes needs img_metas")
        cfg = self._test_cfg(cfg)
        flat_cls, flat_bbox, flat_obj, priors = self._flatten(cls_scores, bbox_preds, objectnesses)
        probs = flat_cls.sigmoid()
        objectness = flat_obj.sigmoid()
        bboxes = yolox_decode(priors, flat_bbox)
        no_cap = dict(cfg, max_per_img=None)  # v2's YOLOX keeps every box NMS keeps
        results: list[Any] = []
        for img_id, meta in enumerate(img_metas):
            max_scores, labels = torch.max(probs[img_id], 1)
            scores = max_scores * objectness[img_id]
            keep = scores >= cfg["score_thr"]
            results.append(
                self._bbox_post_process(
                    [scores[keep]],
                    [labels[keep]],
                    [bboxes[img_id][keep]],
                    meta["scale_factor"],
                    no_cap,
                    rescale=rescale,
                    with_nms=with_nms,
                )
            )
        return results

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        objectnesses: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``loss_bbox``, ``loss_obj`` (and ``loss_l1`` while ``use_l1``);
        ``gt_bboxes_ignore`` is not used (v2)."""
        if self.assigner is None:
            raise InvalidArgumentError("YOLOXHead.loss needs train_cfg.assigner")
        flat_cls, flat_bbox, flat_obj, priors = self._flatten(cls_scores, bbox_preds, objectnesses)
        num_imgs = flat_cls.size(0)
        flat_boxes = yolox_decode(priors, flat_bbox)
        pos_masks, cls_targets, obj_targets, bbox_targets, l1_targets, num_pos = multi_apply(
            yolox_targets_single,
            [self.assigner] * num_imgs,
            list(flat_cls.detach()),
            list(flat_obj.detach()),
            [priors] * num_imgs,
            list(flat_boxes.detach()),
            gt_bboxes,
            gt_labels,
            [self.use_l1] * num_imgs,
        )
        num_total = self._num_pos_avg(sum(num_pos), flat_cls.device)
        pos_mask = torch.cat(pos_masks, 0)
        losses = dict(
            loss_cls=self.loss_cls(
                flat_cls.view(-1, self.num_classes)[pos_mask], torch.cat(cls_targets, 0)
            )
            / num_total,
            loss_bbox=self.loss_bbox(flat_boxes.view(-1, 4)[pos_mask], torch.cat(bbox_targets, 0))
            / num_total,
            loss_obj=self.loss_obj(flat_obj.view(-1, 1), torch.cat(obj_targets, 0)) / num_total,
        )
        if self.use_l1:
            losses["loss_l1"] = (
                self.loss_l1(flat_bbox.view(-1, 4)[pos_mask], torch.cat(l1_targets, 0)) / num_total
            )
        return losses
