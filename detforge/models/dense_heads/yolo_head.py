"""``YOLOV3Head``: YOLOv3's head (Redmon & Farhadi 2018), MMDetection v2.28 numerics.

Each level (strides 32, 16, 8: coarsest first) has a 3x3 ConvModule bridge and a 1x1 conv
predicting, per anchor, ``(tx, ty, tw, th, objectness, class logits...)``.

Training: per image, anchors are assigned by :class:`GridAssigner` (positives only in the
cells holding a ground-truth centre); a positive's target is its :class:`YOLOBBoxCoder`
encoding, objectness 1 and the one-hot (optionally smoothed) class. Per level the four losses
(``loss_cls``, ``loss_conf``, ``loss_xy`` on the sigmoid of ``tx, ty``, ``loss_wh``) use the
configured reductions (``'sum'`` in the v2 configs: no normaliser); the objectness loss covers
positives and negatives, the others positives only.

Test: boxes decoded from sigmoid ``tx, ty``; anchors whose objectness is below ``conf_thr``
are dropped; then v2's ``multiclass_nms`` with ``score_thr`` on the class probability and the
objectness as score factor. Every candidate reaches the NMS (v2 ignores ``nms_pre`` here).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.layers import ConvModule
from detforge.models.layers.weight_init import bias_init_with_prob
from detforge.models.utils import images_to_levels, multi_apply
from detforge.ops import multiclass_nms
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta

__all__ = ["YOLOV3Head", "normal_convs_unit_norms"]

_YOLO_ANCHORS: Cfg = MappingProxyType(
    dict(
        type="YOLOAnchorGenerator",
        base_sizes=[
            [(116, 90), (156, 198), (373, 326)],
            [(30, 61), (62, 45), (59, 119)],
            [(10, 13), (16, 30), (33, 23)],
        ],
        strides=[32, 16, 8],
    )
)
_SIGMOID_CE: Cfg = MappingProxyType(
    dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0)
)
_MSE: Cfg = MappingProxyType(dict(type="MSELoss", loss_weight=1.0))
_BN: Cfg = MappingProxyType(dict(type="BN", requires_grad=True))
_LEAKY: Cfg = MappingProxyType(dict(type="LeakyReLU", negative_slope=0.1))


def normal_convs_unit_norms(module: nn.Module, std: float = 0.01) -> None:
    """v2's YOLO-family head init: every ``Conv2d`` Normal(0, ``std``) with zero bias, every
    norm layer weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, std)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        if isinstance(m, _BatchNorm | nn.GroupNorm | nn.LayerNorm) and m.weight is not None:
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


@MODELS.register_module()
class YOLOV3Head(BaseDenseHead):
    """Bridge and prediction convs per level and YOLOv3's four losses (module docstring).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each level's input (kept as ``level_in_channels``).
        out_channels: Channels of each level's bridge conv.
        anchor_generator: Prior generator (``YOLOAnchorGenerator``, COCO anchors by default).
        bbox_coder: Box coder (``YOLOBBoxCoder``).
        featmap_strides: Stride of each level, coarsest first.
        one_hot_smoother: Label smoothing of the class targets (0: off).
        conv_cfg: Conv config of the bridges.
        norm_cfg: Norm config of the bridges.
        act_cfg: Activation of the bridges.
        loss_cls: Class loss (sigmoid cross-entropy).
        loss_conf: Objectness loss (sigmoid cross-entropy).
        loss_xy: Centre-offset loss (sigmoid cross-entropy on ``tx, ty``).
        loss_wh: Size loss (MSE on ``tw, th``).
        train_cfg: ``assigner`` and an optional ``sampler`` (default ``PseudoSampler``).
        test_cfg: ``conf_thr``, ``score_thr``, ``nms``, ``max_per_img`` (``nms_pre`` and
            ``min_bbox_size`` are accepted and unused, as in v2).
        init_cfg: Unused: :meth:`init_weights` is v2's (Normal(0.01) convs, unit norms, the
            objectness and class priors in the prediction biases).

    Raises:
        ValueError: the per-level lists differ in length.
    """

    TEST_CFG_KEYS: ClassVar[frozenset[str]] = BaseDenseHead.TEST_CFG_KEYS | {"conf_thr"}

    def __init__(
        self,
        num_classes: int,
        in_channels: Sequence[int],
        out_channels: Sequence[int] = (1024, 512, 256),
        anchor_generator: Cfg | object = _YOLO_ANCHORS,
        bbox_coder: Cfg | object = MappingProxyType(dict(type="YOLOBBoxCoder")),
        featmap_strides: Sequence[int] = (32, 16, 8),
        one_hot_smoother: float = 0.0,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = _BN,
        act_cfg: Cfg | None = _LEAKY,
        loss_cls: Cfg | nn.Module = _SIGMOID_CE,
        loss_conf: Cfg | nn.Module = _SIGMOID_CE,
        loss_xy: Cfg | nn.Module = _SIGMOID_CE,
        loss_wh: Cfg | nn.Module = _MSE,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        if not len(in_channels) == len(out_channels) == len(featmap_strides):
            raise InvalidArgumentError(
                f"YOLOV3Head: {len(in_channels)} in_channels, {len(out_channels)} out_channels "
                f"and {len(featmap_strides)} featmap_strides"
            )
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels[0],
            feat_channels=out_channels[0],
            loss_cls=loss_cls,
            loss_bbox=None,
            bbox_coder=bbox_coder,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
        )
        self.level_in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        self.featmap_strides = list(featmap_strides)
        self.one_hot_smoother = one_hot_smoother
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.act_cfg = plain_cfg(act_cfg)
        self.loss_conf = build_module(loss_conf, MODELS)
        self.loss_xy = build_module(loss_xy, MODELS)
        self.loss_wh = build_module(loss_wh, MODELS)
        if train_cfg:
            self.assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            self.sampler = build_module(
                train_cfg.get("sampler", {"type": "PseudoSampler"}), TASK_UTILS
            )
        self.prior_generator = build_module(anchor_generator, TASK_UTILS)
        if self.prior_generator.num_levels != len(self.featmap_strides):
            raise InvalidArgumentError(
                f"YOLOV3Head: {self.prior_generator.num_levels} anchor levels for "
                f"{len(self.featmap_strides)} featmap_strides"
            )
        self.num_base_priors = int(self.prior_generator.num_base_priors[0])
        self.convs_bridge = nn.ModuleList()
        self.convs_pred = nn.ModuleList()
        for channels, out in zip(self.level_in_channels, self.out_channels, strict=True):
            self.convs_bridge.append(
                ConvModule(
                    channels,
                    out,
                    3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                )
            )
            self.convs_pred.append(nn.Conv2d(out, self.num_base_priors * self.num_attrib, 1))

    @property
    def num_levels(self) -> int:
        return len(self.featmap_strides)

    @property
    def num_attrib(self) -> int:
        """Values per anchor: 4 box, 1 objectness, ``num_classes`` class logits."""
        return 5 + self.num_classes

    @property
    def anchor_generator(self) -> Any:
        """v2's old name of :attr:`prior_generator`."""
        return self.prior_generator

    def init_weights(self) -> None:
        """v2's: Normal(0, 0.01) convs, unit norm weights, then in every prediction bias the
        objectness prior ``8 / (608 / stride)²`` and the class prior 0.01."""
        normal_convs_unit_norms(self)
        for conv, stride in zip(self.convs_pred, self.featmap_strides, strict=True):
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            bias = conv.bias.data.view(self.num_base_priors, -1)
            bias[:, 4] = bias_init_with_prob(8 / (608 / stride) ** 2)
            bias[:, 5:] = bias_init_with_prob(0.01)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """``(pred_maps,)``: per level ``[B, A * (5 + C), H, W]``."""
        if len(feats) != self.num_levels:
            raise InvalidArgumentError(
                f"YOLOV3Head: {len(feats)} feature levels for {self.num_levels}"
            )
        maps = [
            pred(bridge(x))
            for x, bridge, pred in zip(feats, self.convs_bridge, self.convs_pred, strict=True)
        ]
        return (maps,)

    def _flat(self, pred_map: torch.Tensor) -> torch.Tensor:
        """``[B, A * attrib, H, W]`` → ``[B, H * W * A, attrib]``."""
        return pred_map.permute(0, 2, 3, 1).reshape(pred_map.size(0), -1, self.num_attrib)

    def _anchor_strides(self, level_anchors: Sequence[torch.Tensor]) -> torch.Tensor:
        """The stride of every anchor of the levels, concatenated ``[N]``."""
        return torch.cat(
            [
                anchors.new_full((len(anchors),), float(stride))
                for anchors, stride in zip(level_anchors, self.featmap_strides, strict=True)
            ]
        )

    # ---------------------------------------------------------------- inference
    def get_bboxes(  # type: ignore[override]  # one output list, v2's signature
        self,
        pred_maps: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` (see the module docstring), or
        without NMS the ``(bboxes, scores, labels)`` of every (anchor, class) pair that passes
        the thresholds."""
        cfg = self._test_cfg(cfg)
        level_anchors = self.prior_generator.grid_priors(
            self._featmap_sizes(pred_maps), device=pred_maps[0].device
        )
        anchors = torch.cat(level_anchors)
        strides = self._anchor_strides(level_anchors)
        preds = torch.cat([self._flat(m) for m in pred_maps], dim=1)
        boxes = self.bbox_coder.decode(
            anchors,
            torch.cat([preds[..., :2].sigmoid(), preds[..., 2:4]], dim=-1),
            strides[:, None],
        )
        objectness = preds[..., 4].sigmoid()
        cls_scores = preds[..., 5:].sigmoid()
        conf_thr = cfg.get("conf_thr", -1)
        results: list[Any] = []
        for img_boxes, scores, obj, meta in zip(
            boxes, cls_scores, objectness, img_metas, strict=True
        ):
            if rescale:
                img_boxes = img_boxes / img_boxes.new_tensor(meta["scale_factor"])
            if conf_thr > 0:
                keep = obj >= conf_thr
                img_boxes, scores, obj = img_boxes[keep], scores[keep], obj[keep]
            if not with_nms:
                rows, labels = (scores > cfg["score_thr"]).nonzero(as_tuple=True)
                results.append((img_boxes[rows], scores[rows, labels] * obj[rows], labels))
                continue
            background = scores.new_zeros(len(scores), 1)
            results.append(
                multiclass_nms(
                    img_boxes,
                    torch.cat([scores, background], dim=-1),
                    cfg["score_thr"],
                    cfg["nms"],
                    cfg["max_per_img"],
                    score_factors=obj,
                )
            )
        return results

    # ------------------------------------------------------------------ losses
    def loss(
        self,
        pred_maps: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_conf``, ``loss_xy``, ``loss_wh``: one tensor per level
        (``gt_bboxes_ignore`` is unused, as in v2)."""
        sizes = self._featmap_sizes(pred_maps)
        device = pred_maps[0].device
        anchors = self.prior_generator.grid_priors(sizes, device=device)
        target_maps, neg_maps = multi_apply(
            self._targets_single,
            [self.prior_generator.responsible_flags(sizes, gt, device) for gt in gt_bboxes],
            gt_bboxes,
            gt_labels,
            anchors=anchors,
        )
        counts = [len(a) for a in anchors]
        losses = multi_apply(
            self.loss_single,
            pred_maps,
            images_to_levels(target_maps, counts),
            images_to_levels(neg_maps, counts),
        )
        return dict(zip(("loss_cls", "loss_conf", "loss_xy", "loss_wh"), losses, strict=True))

    def loss_single(
        self, pred_map: torch.Tensor, target_map: torch.Tensor, neg_map: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """One level's four losses over the batch."""
        pred = self._flat(pred_map)
        pos_mask = target_map[..., 4]
        pos_and_neg = (neg_map.float() + pos_mask).clamp(max=1.0)  # disjoint by construction
        pos_weight = pos_mask.unsqueeze(-1)
        return (
            self.loss_cls(pred[..., 5:], target_map[..., 5:], weight=pos_weight),
            self.loss_conf(pred[..., 4], target_map[..., 4], weight=pos_and_neg),
            self.loss_xy(pred[..., :2], target_map[..., :2], weight=pos_weight),
            self.loss_wh(pred[..., 2:4], target_map[..., 2:4], weight=pos_weight),
        )

    def _targets_single(
        self,
        responsible: Sequence[torch.Tensor],
        gt_bboxes: torch.Tensor,
        gt_labels: torch.Tensor,
        *,
        anchors: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One image's ``target_map [N, 5 + C]`` and negative flags ``[N]`` over all levels."""
        flat_anchors = torch.cat(list(anchors))
        strides = self._anchor_strides(anchors)
        assign_result = self.assigner.assign(flat_anchors, torch.cat(list(responsible)), gt_bboxes)
        result = self.sampler.sample(assign_result, flat_anchors, gt_bboxes)
        target = flat_anchors.new_zeros(len(flat_anchors), self.num_attrib)
        pos = result.pos_inds
        target[pos, :4] = self.bbox_coder.encode(
            result.pos_bboxes, result.pos_gt_bboxes, strides[pos]
        )
        target[pos, 4] = 1
        one_hot = F.one_hot(gt_labels, num_classes=self.num_classes).float()
        if self.one_hot_smoother != 0:
            one_hot = (
                one_hot * (1 - self.one_hot_smoother) + self.one_hot_smoother / self.num_classes
            )
        target[pos, 5:] = one_hot[result.pos_assigned_gt_inds]
        negatives = torch.zeros(len(flat_anchors), dtype=torch.bool, device=target.device)
        negatives[result.neg_inds] = True
        return target, negatives
