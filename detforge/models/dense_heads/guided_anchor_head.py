"""``GuidedAnchorHead``: Guided Anchoring (Wang et al. 2019), MMDetection v2.28 numerics.

The head predicts, per position, an anchor location score (``conv_loc``) and an anchor shape
(``conv_shape``: ``dw, dh`` deltas of the square anchor, decoded by ``anchor_coder`` with
``wh_ratio_clip=1e-6``); :class:`FeatureAdaption` resamples the features with a deformable conv
whose offsets come from the (detached) shape prediction; scores and box deltas are then predicted
relative to the guided anchors.

Training:

- location: per ground truth, the level ``floor(log2(sqrt(area) / (octave_base_scale *
  first stride)) + 0.5)`` (clamped); its centre region (``center_ratio``) is positive, the rest of
  its ``ignore_ratio`` region ignored, and the ignore regions of the neighbouring levels ignored
  too (unless positive there); everything else weighs 0.1. Focal loss averaged over ``(cells of
  all levels and images) / 200``.
- shape: square anchors assigned by ``ga_assigner`` (through their approximating anchors, see
  :func:`sampled_approxs`) and sampled by ``ga_sampler``; bounded-IoU loss of the shaped
  anchors of the positives against their boxes, averaged over the sampled (positive, plus
  negative when ``ga_sampler`` is set) count.
- classification and box deltas: :class:`AnchorHead`'s targets and losses on the guided
  anchors, with the approximating anchors' inside flags as valid flags.

Test: guided anchors at the positions whose location probability is at least
``loc_filter_thr`` (per image), per level the ``nms_pre`` best by their highest class score,
decoded and clipped, then v2's ``multiclass_nms`` (score threshold, class-wise NMS,
``max_per_img``).
v2 computes the test-time score and box convs only at those positions (mmcv's ``MaskedConv2d``,
one image per batch); here they are computed everywhere and only those positions are read, which
gives the same detections for any batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.approx_anchors import sampled_approxs
from detforge.models.dense_heads.base_dense_head import SIGMOID_BCE, Detections
from detforge.models.layers.dcn import DeformConv2d
from detforge.models.layers.weight_init import normal_init
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import images_to_levels, multi_apply, unmap
from detforge.ops import multiclass_nms
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["FeatureAdaption", "GuidedAnchorHead", "calc_region", "ga_loc_targets"]

_APPROX: Cfg = MappingProxyType(
    dict(
        type="AnchorGenerator",
        octave_base_scale=8,
        scales_per_octave=3,
        ratios=[0.5, 1.0, 2.0],
        strides=[4, 8, 16, 32, 64],
    )
)
_SQUARE: Cfg = MappingProxyType(
    dict(type="AnchorGenerator", ratios=[1.0], scales=[8], strides=[4, 8, 16, 32, 64])
)
_DELTAS: Cfg = MappingProxyType(
    dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4)
)
_FOCAL: Cfg = MappingProxyType(
    dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
)
_BOUNDED_IOU: Cfg = MappingProxyType(dict(type="BoundedIoULoss", beta=0.2, loss_weight=1.0))
_SMOOTH_L1: Cfg = MappingProxyType(dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0))


class FeatureAdaption(nn.Module):
    """Deformable 3x3 conv whose offsets a bias-free 1x1 conv predicts from a shape map, then
    ReLU (v2's ``FeatureAdaption``, and FoveaBox's ``FeatureAlign`` with a 4-channel map that is
    not detached; init: N(0, 0.1) offsets, N(0, 0.01) conv).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size of the deformable conv.
        deform_groups: Offset groups.
        shape_channels: Channels of the shape map (GA: ``dw, dh``).
        detach_shape: Stop the gradient into the shape map (GA).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        deform_groups: int = 4,
        shape_channels: int = 2,
        detach_shape: bool = True,
    ) -> None:
        super().__init__()
        offset_channels = kernel_size * kernel_size * 2
        self.detach_shape = detach_shape
        self.conv_offset = nn.Conv2d(shape_channels, deform_groups * offset_channels, 1, bias=False)
        self.conv_adaption = DeformConv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            padding=(kernel_size - 1) // 2,
            deform_groups=deform_groups,
        )
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        normal_init(self.conv_offset, std=0.1)
        normal_init(self.conv_adaption, std=0.01)

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        offset = self.conv_offset(shape.detach() if self.detach_shape else shape)
        out: torch.Tensor = self.relu(self.conv_adaption(x, offset))
        return out


def calc_region(
    bbox: torch.Tensor, ratio: float, featmap_size: Sequence[int] | None = None
) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` cell bounds (rounded, clamped to ``[0, W]`` / ``[0, H]``) of the
    central ``1 - 2 * ratio`` part of ``bbox`` (in cells).

    Example:
        >>> calc_region(torch.tensor([0., 0., 10., 10.]), 0.25, (8, 8))
        (2, 2, 8, 8)
    """
    x1 = int(torch.round((1 - ratio) * bbox[0] + ratio * bbox[2]))
    y1 = int(torch.round((1 - ratio) * bbox[1] + ratio * bbox[3]))
    x2 = int(torch.round(ratio * bbox[0] + (1 - ratio) * bbox[2]))
    y2 = int(torch.round(ratio * bbox[1] + (1 - ratio) * bbox[3]))
    if featmap_size is not None:
        h, w = int(featmap_size[0]), int(featmap_size[1])
        x1, x2 = min(max(x1, 0), w), min(max(x2, 0), w)
        y1, y2 = min(max(y1, 0), h), min(max(y2, 0), h)
    return x1, y1, x2, y2


def ga_loc_targets(
    gt_bboxes_list: Sequence[torch.Tensor],
    featmap_sizes: Sequence[Sequence[int]],
    *,
    anchor_scale: float,
    anchor_strides: Sequence[int],
    center_ratio: float,
    ignore_ratio: float,
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """Per level the location targets and weights ``Tensor[B, 1, H, W]`` and the average factor
    (see the module docstring)."""
    num_imgs, num_levels = len(gt_bboxes_list), len(featmap_sizes)
    r1, r2 = (1 - center_ratio) / 2, (1 - ignore_ratio) / 2
    device = gt_bboxes_list[0].device
    targets, weights, ignores = [], [], []
    for h, w in featmap_sizes:
        t = torch.zeros(num_imgs, 1, int(h), int(w), device=device, dtype=torch.float32)
        targets.append(t)
        weights.append(torch.full_like(t, -1))
        ignores.append(torch.zeros_like(t))
    for img, gt_bboxes in enumerate(gt_bboxes_list):
        scale = torch.sqrt(
            (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1])
        )
        min_size = scale.new_full((1,), float(anchor_scale * anchor_strides[0]))
        levels = torch.floor(torch.log2(scale) - torch.log2(min_size) + 0.5)
        levels = levels.clamp(min=0, max=num_levels - 1).long()
        for gt, level in zip(gt_bboxes, levels.tolist(), strict=True):
            box = gt[:4] / anchor_strides[level]
            ix1, iy1, ix2, iy2 = calc_region(box, r2, featmap_sizes[level])
            cx1, cy1, cx2, cy2 = calc_region(box, r1, featmap_sizes[level])
            targets[level][img, 0, cy1 : cy2 + 1, cx1 : cx2 + 1] = 1
            weights[level][img, 0, iy1 : iy2 + 1, ix1 : ix2 + 1] = 0
            weights[level][img, 0, cy1 : cy2 + 1, cx1 : cx2 + 1] = 1
            for other in (level - 1, level + 1):
                if 0 <= other < num_levels:
                    box = gt[:4] / anchor_strides[other]
                    ix1, iy1, ix2, iy2 = calc_region(box, r2, featmap_sizes[other])
                    ignores[other][img, 0, iy1 : iy2 + 1, ix1 : ix2 + 1] = 1
    for weight, ignore in zip(weights, ignores, strict=True):
        weight[(weight < 0) & (ignore > 0)] = 0
        weight[weight < 0] = 0.1
    avg_factor = sum(t.size(0) * t.size(-1) * t.size(-2) for t in targets) / 200
    return targets, weights, avg_factor


@MODELS.register_module()
class GuidedAnchorHead(AnchorHead):
    """Guided Anchoring head with 1x1 predictors (see the module docstring).

    Takes :class:`AnchorHead`'s arguments (its ``anchor_generator`` is the square anchor
    generator) plus:

    Args:
        approx_anchor_generator: Anchors that approximate each square anchor (shape targets).
        square_anchor_generator: One square anchor per position.
        anchor_coder: Coder of the predicted anchor shapes.
        deform_groups: Offset groups of :class:`FeatureAdaption`.
        loc_filter_thr: Lowest location probability of a test-time anchor.
        loss_loc: Location loss.
        loss_shape: Shape loss.

    ``train_cfg`` also holds ``ga_assigner``, ``ga_sampler`` (optional), ``center_ratio`` and
    ``ignore_ratio``.

    Raises:
        ValueError: the generators' strides differ or the square scale is not the approx
            generator's ``octave_base_scale``.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = AnchorHead.TRAIN_CFG_KEYS | {
        "ga_assigner",
        "ga_sampler",
        "center_ratio",
        "ignore_ratio",
    }

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        approx_anchor_generator: Cfg = _APPROX,
        square_anchor_generator: Cfg = _SQUARE,
        anchor_coder: Cfg | object = _DELTAS,
        bbox_coder: Cfg | object = _DELTAS,
        deform_groups: int = 4,
        loc_filter_thr: float = 0.01,
        loss_loc: Cfg | nn.Module = _FOCAL,
        loss_shape: Cfg | nn.Module = _BOUNDED_IOU,
        loss_cls: Cfg | nn.Module = SIGMOID_BCE,
        loss_bbox: Cfg | nn.Module = _SMOOTH_L1,
        train_cfg: Cfg | None = None,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        if approx_anchor_generator.get("octave_base_scale") != square_anchor_generator.get(
            "scales", [None]
        )[0] or list(approx_anchor_generator["strides"]) != list(
            square_anchor_generator["strides"]
        ):
            raise InvalidArgumentError(
                f"{type(self).__name__}: square_anchor_generator must have the approx "
                "generator's strides and its octave_base_scale as its scale"
            )
        self.deform_groups = deform_groups
        self.loc_filter_thr = loc_filter_thr
        self.approx_anchor_generator = build_module(approx_anchor_generator, TASK_UTILS)
        self.approxs_per_octave = int(self.approx_anchor_generator.num_base_priors[0])
        if init_cfg is None:
            init_cfg = dict(
                type="Normal",
                layer="Conv2d",
                std=0.01,
                override=dict(type="Normal", name="conv_loc", std=0.01, bias_prob=0.01),
            )
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            anchor_generator=square_anchor_generator,
            bbox_coder=bbox_coder,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            train_cfg=train_cfg,
            init_cfg=init_cfg,
            **kwargs,
        )
        self.square_anchor_generator = self.prior_generator
        self.anchor_coder = build_module(anchor_coder, TASK_UTILS)
        self.loss_loc = build_module(loss_loc, MODELS)
        self.loss_shape = build_module(loss_shape, MODELS)
        self.ga_sampling = bool(train_cfg) and "ga_sampler" in (train_cfg or {})
        if train_cfg:
            self.ga_assigner = build_module(train_cfg["ga_assigner"], TASK_UTILS)
            self.ga_sampler = (
                build_module(train_cfg["ga_sampler"], TASK_UTILS)
                if self.ga_sampling
                else PseudoSampler()
            )

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.conv_loc = nn.Conv2d(self.in_channels, 1, 1)
        self.conv_shape = nn.Conv2d(self.in_channels, self.num_base_priors * 2, 1)
        self.feature_adaption = FeatureAdaption(
            self.in_channels, self.feat_channels, kernel_size=3, deform_groups=self.deform_groups
        )
        self.conv_cls = nn.Conv2d(
            self.feat_channels, self.num_base_priors * self.cls_out_channels, 1
        )
        self.conv_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        loc_pred = self.conv_loc(x)
        shape_pred = self.conv_shape(x)
        x = self.feature_adaption(x, shape_pred)
        return self.conv_cls(x), self.conv_reg(x), shape_pred, loc_pred

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score``, ``bbox_pred``, ``shape_pred [B, 2A, H, W]`` and
        ``loc_pred [B, 1, H, W]``."""
        return multi_apply(self.forward_single, feats)

    # ---------------------------------------------------------------- anchors
    def get_guided_anchors(
        self,
        featmap_sizes: Sequence[Any],
        shape_preds: Sequence[torch.Tensor],
        loc_preds: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        use_loc_filter: bool = False,
        device: Any = "cpu",
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """Per image, per level: the square anchors, the guided anchors at the kept positions
        and the keep mask (location probability ``>= loc_filter_thr`` with ``use_loc_filter``,
        else everything)."""
        squares = self.square_anchor_generator.grid_priors(featmap_sizes, device=device)
        guided, masks = [], []
        for img in range(len(img_metas)):
            img_guided, img_masks = [], []
            for level, level_squares in enumerate(squares):
                loc = loc_preds[level][img].sigmoid().detach()
                mask = loc >= (self.loc_filter_thr if use_loc_filter else 0.0)
                mask = mask.permute(1, 2, 0).expand(-1, -1, self.num_base_priors).reshape(-1)
                deltas = shape_preds[level][img].permute(1, 2, 0).reshape(-1, 2).detach()[mask]
                bbox_deltas = deltas.new_zeros(int(mask.sum()), 4)
                bbox_deltas[:, 2:] = deltas
                img_guided.append(
                    self.anchor_coder.decode(level_squares[mask], bbox_deltas, wh_ratio_clip=1e-6)
                )
                img_masks.append(mask)
            guided.append(img_guided)
            masks.append(img_masks)
        return [squares for _ in img_metas], guided, masks

    # ---------------------------------------------------------------- targets
    def _shape_target_single(
        self,
        flat_approxs: torch.Tensor,
        inside_flags: torch.Tensor,
        flat_squares: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None,
    ) -> tuple[Any, ...]:
        if not inside_flags.any():
            return (None,) * 5
        expanded = inside_flags[:, None].expand(-1, self.approxs_per_octave).reshape(-1)
        squares = flat_squares[inside_flags, :]
        assign_result = self.ga_assigner.assign(
            flat_approxs[expanded, :], squares, self.approxs_per_octave, gt_bboxes, gt_bboxes_ignore
        )
        sampling = self.ga_sampler.sample(assign_result, squares, gt_bboxes)
        anchors, gts, weights = (torch.zeros_like(squares) for _ in range(3))
        pos = sampling.pos_inds
        if len(pos) > 0:
            anchors[pos, :] = sampling.pos_bboxes
            gts[pos, :] = sampling.pos_gt_bboxes
            weights[pos, :] = 1.0
        total = flat_squares.size(0)
        return (
            unmap(anchors, total, inside_flags),
            unmap(gts, total, inside_flags),
            unmap(weights, total, inside_flags),
            pos,
            sampling.neg_inds,
        )

    def ga_shape_targets(
        self,
        approx_list: Sequence[Sequence[torch.Tensor]],
        inside_flag_list: Sequence[Sequence[torch.Tensor]],
        square_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        gt_bboxes_ignore_list: Sequence[torch.Tensor] | None = None,
    ) -> tuple[Any, ...] | None:
        """Per level the sampled anchors, their boxes and weights ``[B, n_l, 4]``, then the
        positive and negative counts; ``None`` when an image has no anchor inside it."""
        num_imgs = len(gt_bboxes_list)
        num_level = [squares.size(0) for squares in square_list[0]]
        anchors, gts, weights, pos, neg = multi_apply(
            self._shape_target_single,
            [torch.cat(list(a)) for a in approx_list],
            [torch.cat(list(f)) for f in inside_flag_list],
            [torch.cat(list(s)) for s in square_list],
            gt_bboxes_list,
            list(gt_bboxes_ignore_list) if gt_bboxes_ignore_list else [None] * num_imgs,
        )
        if any(a is None for a in anchors):
            return None
        return (
            images_to_levels(anchors, num_level),
            images_to_levels(gts, num_level),
            images_to_levels(weights, num_level),
            sum(max(inds.numel(), 1) for inds in pos),
            sum(max(inds.numel(), 1) for inds in neg),
        )

    # ------------------------------------------------------------------ losses
    def loss_shape_single(
        self,
        shape_pred: torch.Tensor,
        bbox_anchors: torch.Tensor,
        bbox_gts: torch.Tensor,
        anchor_weights: torch.Tensor,
        anchor_total_num: float,
    ) -> torch.Tensor:
        shape_pred = shape_pred.permute(0, 2, 3, 1).reshape(-1, 2)
        bbox_anchors = bbox_anchors.reshape(-1, 4)
        anchor_weights = anchor_weights.reshape(-1, 4)
        deltas = bbox_anchors.new_zeros(bbox_anchors.size())
        deltas[:, 2:] += shape_pred
        inds = (anchor_weights[:, 0] > 0).nonzero().squeeze(1)
        pred = self.anchor_coder.decode(bbox_anchors[inds], deltas[inds], wh_ratio_clip=1e-6)
        loss: torch.Tensor = self.loss_shape(
            pred, bbox_gts.reshape(-1, 4)[inds], anchor_weights[inds], avg_factor=anchor_total_num
        )
        return loss

    def loss(  # type: ignore[override]  # v2's signature: shape and location maps
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        shape_preds: Sequence[torch.Tensor],
        loc_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox``, ``loss_shape`` and ``loss_loc``, one tensor per level.

        Raises:
            ValueError: no train_cfg.
            RuntimeError: an image has no anchor inside it.
        """
        if not self.train_cfg:
            raise InvalidArgumentError(f"{type(self).__name__} needs a train_cfg for its losses")
        featmap_sizes = self._featmap_sizes(cls_scores)
        device = cls_scores[0].device
        strides = [int(s[0]) for s in self.approx_anchor_generator.strides]
        loc_targets, loc_weights, loc_avg = ga_loc_targets(
            gt_bboxes,
            featmap_sizes,
            anchor_scale=self.approx_anchor_generator.octave_base_scale,
            anchor_strides=strides,
            center_ratio=self.train_cfg["center_ratio"],
            ignore_ratio=self.train_cfg["ignore_ratio"],
        )
        approxs, inside = sampled_approxs(
            self.approx_anchor_generator,
            featmap_sizes,
            img_metas,
            self.train_cfg["allowed_border"],
            device,
        )
        squares, guided, _ = self.get_guided_anchors(
            featmap_sizes, shape_preds, loc_preds, img_metas, device=device
        )
        shape_targets = self.ga_shape_targets(approxs, inside, squares, gt_bboxes)
        t = self._targets(guided, inside, gt_bboxes, img_metas, gt_bboxes_ignore, gt_labels)
        if shape_targets is None or t is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        anchors_l, gts_l, weights_l, fg_num, bg_num = shape_targets
        num_samples = t.num_total_pos + (t.num_total_neg if self.sampling else 0)
        losses_cls, losses_bbox = multi_apply(
            self.loss_single,
            cls_scores,
            bbox_preds,
            t.anchors,
            t.labels,
            t.label_weights,
            t.bbox_targets,
            t.bbox_weights,
            num_total_samples=num_samples,
        )
        losses_loc = [
            self.loss_loc(
                pred.reshape(-1, 1),
                target.reshape(-1).long(),
                weight.reshape(-1),
                avg_factor=loc_avg,
            )
            for pred, target, weight in zip(loc_preds, loc_targets, loc_weights, strict=True)
        ]
        total = fg_num + bg_num if self.ga_sampling else fg_num
        losses_shape = [
            self.loss_shape_single(*args, anchor_total_num=total)
            for args in zip(shape_preds, anchors_l, gts_l, weights_l, strict=True)
        ]
        return dict(
            loss_cls=losses_cls, loss_bbox=losses_bbox, loss_shape=losses_shape, loss_loc=losses_loc
        )

    # ------------------------------------------------------------------- test
    def get_bboxes(  # type: ignore[override]  # v2's signature: shape and location maps
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        shape_preds: Sequence[torch.Tensor],
        loc_preds: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta] | None = None,
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` (see the module docstring).

        Raises:
            ValueError: ``img_metas`` is missing.
        """
        if img_metas is None:
            raise InvalidArgumentError(f"{type(self).__name__}.get_bboxes needs img_metas")
        cfg = self._test_cfg(cfg)
        featmap_sizes = self._featmap_sizes(cls_scores)
        _, guided, masks = self.get_guided_anchors(
            featmap_sizes,
            shape_preds,
            loc_preds,
            img_metas,
            use_loc_filter=not self.training,
            device=cls_scores[0].device,
        )
        return [
            self._ga_bboxes_single(
                [s[i].detach() for s in cls_scores],
                [p[i].detach() for p in bbox_preds],
                guided[i],
                masks[i],
                meta,
                cfg,
                rescale,
            )
            for i, meta in enumerate(img_metas)
        ]

    def _ga_bboxes_single(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        mlvl_anchors: Sequence[torch.Tensor],
        mlvl_masks: Sequence[torch.Tensor],
        img_meta: ImgMeta,
        cfg: Cfg,
        rescale: bool,
    ) -> Detections:
        mlvl_bboxes, mlvl_scores = [], []
        nms_pre = cfg.get("nms_pre", -1)
        for cls_score, bbox_pred, anchors, mask in zip(
            cls_scores, bbox_preds, mlvl_anchors, mlvl_masks, strict=True
        ):
            if mask.sum() == 0:
                continue
            cls_score = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            scores = cls_score.sigmoid() if self.use_sigmoid_cls else cls_score.softmax(-1)
            scores = scores[mask, :]
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)[mask, :]
            if 0 < nms_pre < scores.shape[0]:
                best = scores if self.use_sigmoid_cls else scores[:, :-1]
                _, topk = best.max(dim=1)[0].topk(nms_pre)
                anchors, bbox_pred, scores = anchors[topk], bbox_pred[topk], scores[topk]
            mlvl_bboxes.append(
                self.bbox_coder.decode(anchors, bbox_pred, max_shape=img_meta["img_shape"])
            )
            mlvl_scores.append(scores)
        if not mlvl_bboxes:
            empty = cls_scores[0].new_zeros(0, 5)
            return empty, empty.new_zeros(0, dtype=torch.long)
        bboxes = torch.cat(mlvl_bboxes)
        if rescale:
            bboxes = bboxes / bboxes.new_tensor(img_meta["scale_factor"])
        scores = torch.cat(mlvl_scores)
        if self.use_sigmoid_cls:
            scores = torch.cat([scores, scores.new_zeros(scores.shape[0], 1)], dim=1)
        dets, labels = multiclass_nms(
            bboxes, scores, cfg["score_thr"], cfg["nms"], cfg["max_per_img"]
        )[:2]
        return dets, labels
