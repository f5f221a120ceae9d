"""``VFNetHead``: VarifocalNet's IoU-aware dense head (Zhang et al. 2021), MMDetection v2.28.

FCOS-shaped towers predict, per location, an initial box as distances ``(l, t, r, b)``
(``exp`` of a scaled conv output times the level's regression denominator or stride). Nine
points on that box's outline and centre (the "star") steer two deformable 3x3 convs: one
refines the box (a multiplicative residual on the detached initial box), the other predicts
the IoU-aware classification score. Training uses ATSS on square anchors (``use_atss``, the
standard setting) or FCOS's targets, GIoU losses on both boxes weighted by their IoU with the
target, and Varifocal Loss against the IoU of the refined box (``use_vfl``) or focal loss.

v2 built this class on ``ATSSHead`` and ``FCOSHead`` together; here it extends
:class:`AnchorFreeHead` only and calls the ATSS and FCOS target computations as functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, cast

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.anchor_targets import anchor_targets
from detforge.models.dense_heads.base_dense_head import GN32, prior_init_cfg
from detforge.models.dense_heads.fcos_head import FCOS_REGRESS_RANGES, FCOSHead
from detforge.models.layers import ConvModule, DeformConv2d
from detforge.models.layers.scale import Scale
from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_overlaps
from detforge.utils.dist import reduce_mean

__all__ = ["VFNetHead", "star_dcn_offset"]

_FOCAL: Cfg = MappingProxyType(
    dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
)
_VFL: Cfg = MappingProxyType(
    dict(
        type="VarifocalLoss",
        use_sigmoid=True,
        alpha=0.75,
        gamma=2.0,
        iou_weighted=True,
        loss_weight=1.0,
    )
)
_GIOU_INIT: Cfg = MappingProxyType(dict(type="GIoULoss", loss_weight=1.5))
_GIOU_REFINE: Cfg = MappingProxyType(dict(type="GIoULoss", loss_weight=2.0))
_VFNET_ANCHORS: Cfg = MappingProxyType(
    dict(
        type="AnchorGenerator",
        ratios=[1.0],
        octave_base_scale=8,
        scales_per_octave=1,
        center_offset=0.0,
        strides=[8, 16, 32, 64, 128],
    )
)
_NORM_TYPES = ("reg_denom", "stride")

# sampling points of the 3x3 star, row-major like the kernel: (which side gives y, which x);
# sides index the (l, t, r, b) distances, negated for left/top, None for the centre line
_STAR = (
    ((1, -1), (0, -1)),
    ((1, -1), None),
    ((1, -1), (2, 1)),
    (None, (0, -1)),
    (None, None),
    (None, (2, 1)),
    ((3, 1), (0, -1)),
    ((3, 1), None),
    ((3, 1), (2, 1)),
)


def _kernel_grid(kernel: int = 3) -> torch.Tensor:
    """The regular kernel's ``(y, x)`` offsets, row-major: ``Tensor[1, 2 * kernel², 1, 1]``."""
    pad = (kernel - 1) // 2
    base = torch.arange(-pad, pad + 1, dtype=torch.float64)
    ys = base.repeat_interleave(kernel)
    xs = base.repeat(kernel)
    return torch.stack([ys, xs], dim=1).reshape(1, -1, 1, 1)


def star_dcn_offset(bbox_pred: torch.Tensor, gradient_mul: float, stride: float) -> torch.Tensor:
    """Deformable-conv offsets that move a 3x3 kernel onto the star of each predicted box.

    Args:
        bbox_pred: ``Tensor[B, 4, H, W]`` distances ``(l, t, r, b)`` in pixels.
        gradient_mul: Fraction of the gradient that flows back into ``bbox_pred``.
        stride: The level's stride (pixels per feature cell).

    Returns:
        ``Tensor[B, 18, H, W]``: per kernel position ``(y, x)`` offsets relative to the
        regular 3x3 grid, in feature cells.

    Example:
        >>> off = star_dcn_offset(torch.tensor([[[[8.]], [[16.]], [[24.]], [[8.]]]]), 0.1, 8)
        >>> off[0, :4, 0, 0].tolist()  # (y, x) moves of the top-left and top-centre taps
        [-1.0, 0.0, -1.0, 0.0]
    """
    scaled = (1 - gradient_mul) * bbox_pred.detach() + gradient_mul * bbox_pred
    scaled = scaled / stride
    n, _, h, w = bbox_pred.size()
    offset = bbox_pred.new_zeros(n, 2 * len(_STAR), h, w)
    for k, coords in enumerate(_STAR):
        for axis, side in enumerate(coords):
            if side is not None:
                index, sign = side
                offset[:, 2 * k + axis] = scaled[:, index] if sign > 0 else -1.0 * scaled[:, index]
    return offset - _kernel_grid().type_as(bbox_pred)


@MODELS.register_module()
class VFNetHead(AnchorFreeHead):
    """VarifocalNet head: :class:`AnchorFreeHead`'s arguments plus the following.

    Args:
        regress_ranges: Per level ``(min, max)`` box sizes (FCOS targets; the last max also
            sets the regression denominators).
        center_sampling: FCOS targets: positives only near the box centre.
        center_sample_radius: FCOS targets: radius of the centre region, in strides.
        sync_num_pos: Average the number of positives over the distributed ranks.
        gradient_mul: Gradient fraction from the star offsets into the initial box.
        bbox_norm_type: Box scale: ``'reg_denom'`` (regress-range max) or ``'stride'``.
        loss_cls_fl: Focal loss config used when ``use_vfl`` is False.
        use_vfl: Train the scores with Varifocal Loss against the refined boxes' IoU.
        loss_cls: Varifocal loss config.
        loss_bbox: Loss of the initial boxes (GIoU).
        loss_bbox_refine: Loss of the refined boxes (GIoU).
        norm_cfg: Norm layer config of the towers.
        use_atss: ATSS targets on square anchors (else FCOS targets on points).
        reg_decoded_bbox: Accepted for v2 compatibility (the boxes are always decoded).
        anchor_generator: Anchors of the ATSS assignment (``center_offset`` also places the
            points).
        init_cfg: Initialisation config (``None``: the 0.01 prior on ``vfnet_cls``).

    ``train_cfg`` holds the ``assigner`` (ATSS), ``allowed_border`` and ``pos_weight``.

    Example:
        >>> head = VFNetHead(3, 8, feat_channels=8, stacked_convs=1, strides=[8, 16],
        ...                  regress_ranges=((-1, 64), (64, 1e8)),
        ...                  norm_cfg=dict(type='GN', num_groups=2),
        ...                  anchor_generator=dict(type='AnchorGenerator', ratios=[1.0],
        ...                      octave_base_scale=8, scales_per_octave=1, strides=[8, 16]))
        >>> scores, boxes = head.eval()([torch.rand(1, 8, 4, 4), torch.rand(1, 8, 2, 2)])
        >>> scores[0].shape, boxes[1].shape
        (torch.Size([1, 3, 4, 4]), torch.Size([1, 4, 2, 2]))
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        regress_ranges: Sequence[Sequence[float]] = FCOS_REGRESS_RANGES,
        center_sampling: bool = False,
        center_sample_radius: float = 1.5,
        sync_num_pos: bool = True,
        gradient_mul: float = 0.1,
        bbox_norm_type: str = "reg_denom",
        loss_cls_fl: Cfg | nn.Module = _FOCAL,
        use_vfl: bool = True,
        loss_cls: Cfg | nn.Module = _VFL,
        loss_bbox: Cfg | nn.Module = _GIOU_INIT,
        loss_bbox_refine: Cfg | nn.Module = _GIOU_REFINE,
        norm_cfg: Cfg | None = GN32,
        use_atss: bool = True,
        reg_decoded_bbox: bool = True,
        anchor_generator: Cfg | object = _VFNET_ANCHORS,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        if bbox_norm_type not in _NORM_TYPES:
            raise InvalidArgumentError(
                f"VFNetHead: bbox_norm_type must be one of {_NORM_TYPES}, got {bbox_norm_type!r}"
            )
        if len(regress_ranges) < 2:
            raise InvalidArgumentError(
                f"VFNetHead: need at least two regress_ranges, got {regress_ranges}"
            )
        self.dcn_kernel = 3
        self.dcn_pad = 1
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            loss_cls=loss_cls if use_vfl else loss_cls_fl,
            loss_bbox=loss_bbox,
            norm_cfg=norm_cfg,
            init_cfg=prior_init_cfg("vfnet_cls") if init_cfg is None else init_cfg,
            **kwargs,
        )
        self.regress_ranges = [tuple(r) for r in regress_ranges]
        self.reg_denoms = [float(r[-1]) for r in self.regress_ranges]
        self.reg_denoms[-1] = self.reg_denoms[-2] * 2
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.sync_num_pos = sync_num_pos
        self.bbox_norm_type = bbox_norm_type
        self.gradient_mul = gradient_mul
        self.use_vfl = use_vfl
        self.loss_bbox_refine = build_module(loss_bbox_refine, MODELS)
        self.use_atss = use_atss
        self.norm_on_bbox = False
        self.reg_decoded_bbox = reg_decoded_bbox
        self.sampling = False
        if self.train_cfg:
            self.assigner = build_module(self.train_cfg["assigner"], TASK_UTILS)
            self.sampler = PseudoSampler()
        # anchors only define the ATSS targets; points are the priors of the boxes
        self.atss_prior_generator = build_module(anchor_generator, TASK_UTILS)
        self.anchor_center_offset = float(self.atss_prior_generator.center_offset)
        self.fcos_prior_generator = MlvlPointGenerator(
            self.atss_prior_generator.strides, self.anchor_center_offset if use_atss else 0.5
        )
        self.prior_generator = self.fcos_prior_generator

    # FCOS's point-target rules, used as functions when ``use_atss`` is False (v2 reached them
    # through multiple inheritance); they read regress_ranges, center_sampling(_radius),
    # norm_on_bbox, num_classes and prior_generator
    _get_target_single = FCOSHead._get_target_single
    _inside_center_region = FCOSHead._inside_center_region

    def _init_layers(self) -> None:
        self._init_cls_convs()
        self._init_reg_convs()
        self.relu = nn.ReLU(inplace=True)
        self.vfnet_reg_conv = ConvModule(
            self.feat_channels,
            self.feat_channels,
            3,
            stride=1,
            padding=1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            bias=self.conv_bias,
        )
        self.vfnet_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])
        self.vfnet_reg_refine_dconv = DeformConv2d(
            self.feat_channels, self.feat_channels, self.dcn_kernel, 1, padding=self.dcn_pad
        )
        self.vfnet_reg_refine = nn.Conv2d(self.feat_channels, 4, 3, padding=1)
        self.scales_refine = nn.ModuleList([Scale(1.0) for _ in self.strides])
        self.vfnet_cls_dconv = DeformConv2d(
            self.feat_channels, self.feat_channels, self.dcn_kernel, 1, padding=self.dcn_pad
        )
        self.vfnet_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: scores ``[B, C, H, W]``, initial boxes ``[B, 4, H, W]`` (training only)
        and refined boxes ``[B, 4, H, W]``, all as ``(l, t, r, b)`` distances in pixels."""
        strides = [_square(stride) for stride in self.strides]
        return multi_apply(
            self.forward_single,
            feats,
            list(self.scales),
            list(self.scales_refine),
            strides,
            self.reg_denoms,
        )

    def forward_single(  # type: ignore[override]  # v2's signature: the level's extras
        self,
        x: torch.Tensor,
        scale: nn.Module,
        scale_refine: nn.Module,
        stride: int,
        reg_denom: float,
    ) -> tuple[torch.Tensor, ...]:
        cls_feat = self.cls_convs(x)
        reg_feat = self.reg_convs(x)
        norm = reg_denom if self.bbox_norm_type == "reg_denom" else stride
        bbox_pred = scale(self.vfnet_reg(self.vfnet_reg_conv(reg_feat))).float().exp() * norm
        dcn_offset = star_dcn_offset(bbox_pred, self.gradient_mul, stride).to(reg_feat.dtype)
        reg_feat = self.relu(self.vfnet_reg_refine_dconv(reg_feat, dcn_offset))
        bbox_pred_refine = scale_refine(self.vfnet_reg_refine(reg_feat)).float().exp()
        bbox_pred_refine = bbox_pred_refine * bbox_pred.detach()
        cls_feat = self.relu(self.vfnet_cls_dconv(cls_feat, dcn_offset))
        cls_score = self.vfnet_cls(cls_feat)
        if self.training:
            return cls_score, bbox_pred, bbox_pred_refine
        return cls_score, bbox_pred_refine

    # ------------------------------------------------------------------ losses
    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        bbox_preds_refine: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``loss_bbox`` and ``loss_bbox_rf`` (each a scalar, as in v2).

        Box losses are weighted by the IoU of each positive's box with its target (floored
        at 1e-6) and averaged over the sum of those weights; the classification loss is
        averaged over the positives.
        """
        if not len(cls_scores) == len(bbox_preds) == len(bbox_preds_refine):
            raise InvalidArgumentError(
                f"VFNetHead.loss: {len(cls_scores)}, {len(bbox_preds)} and "
                f"{len(bbox_preds_refine)} levels of scores, boxes and refined boxes"
            )
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        points = self.fcos_prior_generator.grid_priors(
            featmap_sizes, bbox_preds[0].dtype, bbox_preds[0].device
        )
        labels, label_weights, bbox_targets, _ = self.get_targets(
            cls_scores, points, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore
        )
        num_imgs = cls_scores[0].size(0)
        flat_scores = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for s in cls_scores]
        )
        flat_preds = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, 4) for p in bbox_preds])
        flat_refine = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, 4) for p in bbox_preds_refine])
        flat_labels = torch.cat(labels)
        flat_targets = torch.cat(bbox_targets)
        flat_points = torch.cat([p.repeat(num_imgs, 1) for p in points])
        pos_inds = torch.where((flat_labels >= 0) & (flat_labels < self.num_classes))[0]
        num_pos = len(pos_inds)
        pos_preds = flat_preds[pos_inds]
        pos_refine = flat_refine[pos_inds]
        pos_labels = flat_labels[pos_inds]
        if self.sync_num_pos:
            avg_pos = reduce_mean(pos_inds.new_tensor(num_pos).float()).item()
            avg_pos = max(avg_pos, 1.0)
        else:
            avg_pos = num_pos
        pos_points = flat_points[pos_inds]
        pos_decoded = self.bbox_coder.decode(pos_points, pos_preds)
        pos_decoded_targets = self.bbox_coder.decode(pos_points, flat_targets[pos_inds]).detach()
        iou_ini = bbox_overlaps(pos_decoded, pos_decoded_targets, is_aligned=True).clamp(min=1e-6)
        weights_ini = iou_ini.clone().detach()
        avg_ini = reduce_mean(weights_ini.sum()).clamp_(min=1).item()
        pos_decoded_refine = self.bbox_coder.decode(pos_points, pos_refine)
        iou_rf = bbox_overlaps(pos_decoded_refine, pos_decoded_targets, is_aligned=True).clamp(
            min=1e-6
        )
        weights_rf = iou_rf.clone().detach()
        avg_rf = reduce_mean(weights_rf.sum()).clamp_(min=1).item()
        cls_targets = torch.zeros_like(flat_scores)
        if num_pos > 0:
            loss_bbox = self.loss_bbox(
                pos_decoded, pos_decoded_targets, weight=weights_ini, avg_factor=avg_ini
            )
            loss_bbox_refine = self.loss_bbox_refine(
                pos_decoded_refine, pos_decoded_targets, weight=weights_rf, avg_factor=avg_rf
            )
            cls_targets[pos_inds, pos_labels] = iou_rf.clone().detach()
        else:
            loss_bbox = pos_preds.sum() * 0
            loss_bbox_refine = pos_refine.sum() * 0
        if self.use_vfl:
            loss_cls = self.loss_cls(flat_scores, cls_targets, avg_factor=avg_pos)
        else:
            loss_cls = self.loss_cls(
                flat_scores, flat_labels, weight=label_weights, avg_factor=avg_pos
            )
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_bbox_rf=loss_bbox_refine)

    # ---------------------------------------------------------------- targets
    def get_targets(
        self,
        cls_scores: Sequence[torch.Tensor],
        mlvl_points: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor | None, list[torch.Tensor], torch.Tensor | None]:
        """Per level labels ``[B * n_l]`` and ``(l, t, r, b)`` targets ``[B * n_l, 4]``, plus
        the label and box weights of all levels (``None`` for FCOS targets)."""
        if self.use_atss:
            return self.get_atss_targets(
                cls_scores, mlvl_points, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore
            )
        # FCOS's rules on the points (distances in pixels: no norm_on_bbox)
        labels, bbox_targets = FCOSHead.get_targets(
            cast(Any, self), mlvl_points, gt_bboxes, gt_labels
        )
        return labels, None, bbox_targets, None

    def get_anchors(
        self, featmap_sizes: Sequence[Any], img_metas: Sequence[ImgMeta], device: Any = "cpu"
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """The ATSS anchors of every image and their valid flags (from ``pad_shape``)."""
        anchors = self.atss_prior_generator.grid_priors(featmap_sizes, device=device)
        flags = [
            self.atss_prior_generator.valid_flags(featmap_sizes, meta["pad_shape"], device)
            for meta in img_metas
        ]
        return [anchors for _ in img_metas], flags

    def get_atss_targets(
        self,
        cls_scores: Sequence[torch.Tensor],
        mlvl_points: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """ATSS targets on the anchors, turned into distances from the points."""
        if self.train_cfg is None:
            raise InvalidArgumentError(
                "VFNetHead needs a train_cfg (the ATSS assigner) for its losses"
            )
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        if not (
            len(featmap_sizes)
            == self.atss_prior_generator.num_levels
            == self.fcos_prior_generator.num_levels
        ):
            raise InvalidArgumentError(
                f"VFNetHead: {len(featmap_sizes)} feature levels for "
                f"{self.atss_prior_generator.num_levels} anchor levels"
            )
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, img_metas, device=device)
        targets = anchor_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes,
            img_metas,
            assigner=self.assigner,
            sampler=self.sampler,
            num_classes=self.num_classes,
            train_cfg=self.train_cfg,
            gt_bboxes_ignore_list=gt_bboxes_ignore,
            gt_labels_list=gt_labels,
        )
        if targets is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        num_imgs = len(img_metas)
        distances = [
            self.bbox_coder.encode(points.repeat(num_imgs, 1), boxes.reshape(-1, 4))
            for points, boxes in zip(mlvl_points, targets.bbox_targets, strict=True)
        ]
        return (
            [lab.reshape(-1) for lab in targets.labels],
            torch.cat([w.reshape(-1) for w in targets.label_weights]),
            distances,
            torch.cat([w.reshape(-1) for w in targets.bbox_weights]),
        )


def _square(stride: int | Sequence[int]) -> int:
    if isinstance(stride, int | float):
        return int(stride)
    if len(stride) != 2 or stride[0] != stride[1]:
        raise InvalidArgumentError(f"VFNetHead needs square strides, got {stride}")
    return int(stride[0])
