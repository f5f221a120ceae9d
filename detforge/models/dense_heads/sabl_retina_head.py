"""``SABLRetinaHead``: RetinaNet with Side-Aware Boundary Localization (Wang et al. 2020),
MMDetection v2.28 numerics.

One square anchor per position (``square_anchor_generator``) assigned by
:class:`ApproxMaxIoUAssigner` through the RetinaNet anchors at that position
(``approx_anchor_generator``; positions count when any of them is inside the image, see
:func:`sampled_approxs`). The regression tower predicts, per side, bucket logits
(``retina_bbox_cls``) and bucket offsets (``retina_bbox_reg``), encoded and decoded by
:class:`BucketingBBoxCoder`. Losses per level: focal over the positives (plus negatives when
sampling), the bucket BCE averaged over ``positives * 4 * buckets per side`` and the offset
smooth L1 averaged over ``positives * 4 * offset_topk``. Test: the RetinaNet post-processing with
the coder's localisation confidence as the score factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.approx_anchors import sampled_approxs
from detforge.models.dense_heads.base_dense_head import BaseDenseHead, Detections, prior_init_cfg
from detforge.models.layers import ConvModule
from detforge.models.losses import GHMC, FocalLoss, QualityFocalLoss
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import filter_scores_and_topk, images_to_levels, multi_apply, unmap
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta

__all__ = ["SABLRetinaHead"]

_APPROX: Cfg = MappingProxyType(
    dict(
        type="AnchorGenerator",
        octave_base_scale=4,
        scales_per_octave=3,
        ratios=[0.5, 1.0, 2.0],
        strides=[8, 16, 32, 64, 128],
    )
)
_SQUARE: Cfg = MappingProxyType(
    dict(type="AnchorGenerator", ratios=[1.0], scales=[4], strides=[8, 16, 32, 64, 128])
)
_BUCKETS: Cfg = MappingProxyType(dict(type="BucketingBBoxCoder", num_buckets=14, scale_factor=3.0))
_FOCAL: Cfg = MappingProxyType(
    dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
)
_BUCKET_BCE: Cfg = MappingProxyType(
    dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.5)
)
_OFFSET_L1: Cfg = MappingProxyType(dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.5))


@MODELS.register_module()
class SABLRetinaHead(BaseDenseHead):
    """SABL's RetinaNet head (see the module docstring).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each input feature map.
        stacked_convs: 3x3 ConvModules per tower.
        feat_channels: Channels of the towers.
        approx_anchor_generator: Anchors that approximate each square anchor.
        square_anchor_generator: The square anchors (one per position).
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers.
        bbox_coder: The bucketing coder.
        reg_decoded_bbox: Accepted for v2 compatibility (SABL never regresses decoded boxes).
        train_cfg: ``assigner`` (``ApproxMaxIoUAssigner``), ``allowed_border``, ``pos_weight``.
        test_cfg: RetinaNet's test settings.
        loss_cls: Classification loss (focal: no sampling).
        loss_bbox_cls: Bucket classification loss.
        loss_bbox_reg: Bucket offset loss.
        init_cfg: Default Normal(std=0.01) convs and the 0.01 prior as ``retina_cls``'s bias.

    Raises:
        ValueError: the generators' strides differ or the square scale is not the approx
            generator's ``octave_base_scale``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        stacked_convs: int = 4,
        feat_channels: int = 256,
        approx_anchor_generator: Cfg = _APPROX,
        square_anchor_generator: Cfg = _SQUARE,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        bbox_coder: Cfg = _BUCKETS,
        reg_decoded_bbox: bool = False,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        loss_cls: Cfg | nn.Module = _FOCAL,
        loss_bbox_cls: Cfg | nn.Module = _BUCKET_BCE,
        loss_bbox_reg: Cfg | nn.Module = _OFFSET_L1,
        init_cfg: Any = None,
    ) -> None:
        if approx_anchor_generator.get("octave_base_scale") != square_anchor_generator.get(
            "scales", [None]
        )[0] or list(approx_anchor_generator["strides"]) != list(
            square_anchor_generator["strides"]
        ):
            raise InvalidArgumentError(
                "SABLRetinaHead: square_anchor_generator must have the approx generator's "
                "strides and its octave_base_scale as its scale"
            )
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox_reg,
            bbox_coder=bbox_coder,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=prior_init_cfg("retina_cls") if init_cfg is None else init_cfg,
        )
        self.num_buckets = int(self.bbox_coder.num_buckets)
        self.side_num = math.ceil(self.num_buckets / 2)
        self.approx_anchor_generator = build_module(approx_anchor_generator, TASK_UTILS)
        self.square_anchor_generator = build_module(square_anchor_generator, TASK_UTILS)
        self.prior_generator = self.square_anchor_generator
        self.approxs_per_octave = int(self.approx_anchor_generator.num_base_priors[0])
        self.num_base_priors = int(self.square_anchor_generator.num_base_priors[0])
        self.stacked_convs = stacked_convs
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.reg_decoded_bbox = reg_decoded_bbox
        self.loss_bbox_cls = build_module(loss_bbox_cls, MODELS)
        self.loss_bbox_reg = self.loss_bbox
        self.sampling = not isinstance(self.loss_cls, FocalLoss | GHMC | QualityFocalLoss)
        if train_cfg:
            self.assigner = build_module(train_cfg["assigner"], TASK_UTILS)
            sampler = train_cfg.get("sampler") if self.sampling else None
            self.sampler = build_module(sampler, TASK_UTILS) if sampler else PseudoSampler()
        self._init_layers()

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.retina_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.retina_bbox_reg = nn.Conv2d(self.feat_channels, self.side_num * 4, 3, padding=1)
        self.retina_bbox_cls = nn.Conv2d(self.feat_channels, self.side_num * 4, 3, padding=1)

    def _tower(self) -> nn.ModuleList:
        return nn.ModuleList(
            ConvModule(
                self.in_channels if i == 0 else self.feat_channels,
                self.feat_channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
            )
            for i in range(self.stacked_convs)
        )

    @property
    def num_anchors(self) -> int:
        """v2's old name of :attr:`num_base_priors`."""
        return self.num_base_priors

    def forward_single(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.retina_cls(cls_feat), (
            self.retina_bbox_cls(reg_feat),
            self.retina_bbox_reg(reg_feat),
        )

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[Any], ...]:
        """Per level ``cls_score [B, C, H, W]`` and ``(bucket logits, bucket offsets)``, each
        ``[B, 4 * side_num, H, W]``."""
        return multi_apply(self.forward_single, feats)

    def get_anchors(
        self, featmap_sizes: Sequence[Any], img_metas: Sequence[ImgMeta], device: Any = "cpu"
    ) -> list[list[torch.Tensor]]:
        """Per image, per level the square anchors."""
        squares = self.square_anchor_generator.grid_priors(featmap_sizes, device=device)
        return [squares for _ in img_metas]

    # ---------------------------------------------------------------- targets
    def _get_target_single(
        self,
        flat_approxs: torch.Tensor,
        inside_flags: torch.Tensor,
        flat_squares: torch.Tensor,
        gt_bboxes: torch.Tensor,
        gt_bboxes_ignore: torch.Tensor | None,
        gt_labels: torch.Tensor | None,
    ) -> tuple[Any, ...]:
        assert self.train_cfg is not None
        if not inside_flags.any():
            return (None,) * 8
        expanded = inside_flags[:, None].expand(-1, self.approxs_per_octave).reshape(-1)
        squares = flat_squares[inside_flags, :]
        assign_result = self.assigner.assign(
            flat_approxs[expanded, :], squares, self.approxs_per_octave, gt_bboxes, gt_bboxes_ignore
        )
        sampling = self.sampler.sample(assign_result, squares, gt_bboxes)
        n, width = squares.size(0), self.side_num * 4
        targets = [squares.new_zeros((n, width)) for _ in range(4)]  # cls t, cls w, reg t, reg w
        labels = squares.new_full((n,), self.num_classes, dtype=torch.long)
        label_weights = squares.new_zeros(n, dtype=torch.float)
        pos, neg = sampling.pos_inds, sampling.neg_inds
        if len(pos) > 0:
            reg_t, reg_w, cls_t, cls_w = self.bbox_coder.encode(
                sampling.pos_bboxes, sampling.pos_gt_bboxes
            )
            for target, value in zip(targets, (cls_t, cls_w, reg_t, reg_w), strict=True):
                target[pos, :] = value
            labels[pos] = 0 if gt_labels is None else gt_labels[sampling.pos_assigned_gt_inds]
            pos_weight = self.train_cfg["pos_weight"]
            label_weights[pos] = 1.0 if pos_weight <= 0 else pos_weight
        if len(neg) > 0:
            label_weights[neg] = 1.0
        total = flat_squares.size(0)
        return (
            unmap(labels, total, inside_flags, fill=self.num_classes),
            unmap(label_weights, total, inside_flags),
            *(unmap(t, total, inside_flags) for t in targets),
            pos,
            neg,
        )

    def get_target(
        self,
        approx_list: Sequence[Sequence[torch.Tensor]],
        inside_flag_list: Sequence[Sequence[torch.Tensor]],
        square_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore_list: Sequence[torch.Tensor] | None = None,
        gt_labels_list: Sequence[torch.Tensor] | None = None,
    ) -> tuple[Any, ...] | None:
        """Per level ``labels``, ``label_weights``, bucket ``cls_targets``, ``cls_weights``,
        ``reg_targets``, ``reg_weights`` ``[B, n_l, ...]``, then the positive and negative
        counts (each image at least 1); ``None`` when an image has no anchor inside it."""
        num_imgs = len(img_metas)
        num_level = [squares.size(0) for squares in square_list[0]]
        results = multi_apply(
            self._get_target_single,
            [torch.cat(list(a)) for a in approx_list],
            [torch.cat(list(f)) for f in inside_flag_list],
            [torch.cat(list(s)) for s in square_list],
            gt_bboxes_list,
            list(gt_bboxes_ignore_list) if gt_bboxes_ignore_list else [None] * num_imgs,
            list(gt_labels_list) if gt_labels_list else [None] * num_imgs,
        )
        if any(labels is None for labels in results[0]):
            return None
        *per_image, pos_list, neg_list = results
        return (
            *(images_to_levels(items, num_level) for items in per_image),
            sum(max(inds.numel(), 1) for inds in pos_list),
            sum(max(inds.numel(), 1) for inds in neg_list),
        )

    # ------------------------------------------------------------------ losses
    def loss_single(
        self,
        cls_score: torch.Tensor,
        bbox_pred: tuple[torch.Tensor, torch.Tensor],
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_cls_targets: torch.Tensor,
        bbox_cls_weights: torch.Tensor,
        bbox_reg_targets: torch.Tensor,
        bbox_reg_weights: torch.Tensor,
        num_total_samples: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = self.side_num * 4
        loss_cls = self.loss_cls(
            cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels),
            labels.reshape(-1),
            label_weights.reshape(-1),
            avg_factor=num_total_samples,
        )
        cls_pred, reg_pred = (p.permute(0, 2, 3, 1).reshape(-1, width) for p in bbox_pred)
        loss_bbox_cls = self.loss_bbox_cls(
            cls_pred,
            bbox_cls_targets.reshape(-1, width).long(),
            bbox_cls_weights.reshape(-1, width),
            avg_factor=num_total_samples * 4 * self.side_num,
        )
        loss_bbox_reg = self.loss_bbox_reg(
            reg_pred,
            bbox_reg_targets.reshape(-1, width),
            bbox_reg_weights.reshape(-1, width),
            avg_factor=num_total_samples * 4 * self.bbox_coder.offset_topk,
        )
        return loss_cls, loss_bbox_cls, loss_bbox_reg

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[tuple[torch.Tensor, torch.Tensor]],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox_cls`` and ``loss_bbox_reg``, one tensor per level.

        Raises:
            ValueError: no train_cfg.
            RuntimeError: an image has no anchor inside it.
        """
        if not self.train_cfg:
            raise InvalidArgumentError("SABLRetinaHead needs a train_cfg for its losses")
        featmap_sizes = self._featmap_sizes(cls_scores)
        device = cls_scores[0].device
        approxs, inside = sampled_approxs(
            self.approx_anchor_generator,
            featmap_sizes,
            img_metas,
            self.train_cfg["allowed_border"],
            device,
        )
        squares = self.get_anchors(featmap_sizes, img_metas, device=device)
        targets = self.get_target(
            approxs, inside, squares, gt_bboxes, img_metas, gt_bboxes_ignore, gt_labels
        )
        if targets is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        *levels, num_pos, num_neg = targets
        losses_cls, losses_bbox_cls, losses_bbox_reg = multi_apply(
            self.loss_single,
            cls_scores,
            bbox_preds,
            *levels,
            num_total_samples=num_pos + num_neg if self.sampling else num_pos,
        )
        return dict(
            loss_cls=losses_cls, loss_bbox_cls=losses_bbox_cls, loss_bbox_reg=losses_bbox_reg
        )

    # ------------------------------------------------------------------- test
    def get_bboxes(  # type: ignore[override]  # v2's signature: no score factors
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[tuple[torch.Tensor, torch.Tensor]],
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
            raise InvalidArgumentError("SABLRetinaHead.get_bboxes needs img_metas")
        cfg = self._test_cfg(cfg)
        featmap_sizes = self._featmap_sizes(cls_scores)
        squares = self.square_anchor_generator.grid_priors(
            featmap_sizes, device=cls_scores[0].device
        )
        results = []
        for i, meta in enumerate(img_metas):
            results.append(
                self._sabl_bboxes_single(
                    [s[i].detach() for s in cls_scores],
                    [(p[0][i].detach(), p[1][i].detach()) for p in bbox_preds],
                    squares,
                    meta,
                    cfg,
                    rescale,
                    with_nms,
                )
            )
        return results

    def _sabl_bboxes_single(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[tuple[torch.Tensor, torch.Tensor]],
        mlvl_anchors: Sequence[torch.Tensor],
        img_meta: ImgMeta,
        cfg: Cfg,
        rescale: bool,
        with_nms: bool,
    ) -> Detections:
        width = self.side_num * 4
        mlvl_bboxes, mlvl_scores, mlvl_confids, mlvl_labels = [], [], [], []
        for cls_score, (cls_pred, reg_pred), anchors in zip(
            cls_scores, bbox_preds, mlvl_anchors, strict=True
        ):
            cls_score = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            scores = cls_score.sigmoid() if self.use_sigmoid_cls else cls_score.softmax(-1)[:, :-1]
            scores, labels, _, kept = filter_scores_and_topk(
                scores,
                cfg["score_thr"],
                cfg.get("nms_pre", -1),
                dict(
                    anchors=anchors,
                    bbox_cls_pred=cls_pred.permute(1, 2, 0).reshape(-1, width),
                    bbox_reg_pred=reg_pred.permute(1, 2, 0).reshape(-1, width),
                ),
            )
            assert kept is not None
            bboxes, confids = self.bbox_coder.decode(
                kept["anchors"].contiguous(),
                [kept["bbox_cls_pred"].contiguous(), kept["bbox_reg_pred"].contiguous()],
                max_shape=img_meta["img_shape"],
            )
            mlvl_bboxes.append(bboxes)
            mlvl_scores.append(scores)
            mlvl_confids.append(confids)
            mlvl_labels.append(labels)
        return self._bbox_post_process(
            mlvl_scores,
            mlvl_labels,
            mlvl_bboxes,
            img_meta["scale_factor"],
            cfg,
            rescale=rescale,
            with_nms=with_nms,
            mlvl_score_factors=mlvl_confids,
        )
