"""``GFLHead``: Generalized Focal Loss head (Li et al. 2020), numerically MMDetection v2.28's.

The head is ATSS-shaped (one square anchor per location, ATSS assignment) but predicts

- a joint classification/quality score per class, trained with Quality Focal Loss against the
  IoU of the decoded box (0 for negatives), and
- each box side as a discrete distribution over ``0..reg_max`` (in units of the level's
  stride), read out by :class:`Integral` and trained with GIoU on the decoded box plus
  Distribution Focal Loss on the distributions.

Targets come from :func:`~detforge.models.dense_heads.atss_head.atss_targets` (shared with
``ATSSHead`` and ``VFNetHead``), with the ground-truth boxes themselves as box targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.atss_head import atss_targets
from detforge.models.dense_heads.dense_test import bbox_post_process, reduce_mean
from detforge.models.layers import ConvModule
from detforge.models.layers.scale import Scale
from detforge.models.utils import (
    filter_scores_and_topk,
    multi_apply,
)
from detforge.registry import MODELS, TASK_UTILS, build_module
from detforge.structures.bbox import bbox_overlaps

__all__ = ["GFLHead", "Integral", "anchor_centers"]

Cfg = Mapping[str, Any]


def anchor_centers(anchors: torch.Tensor) -> torch.Tensor:
    """Centres ``Tensor[..., 2]`` (x, y) of boxes ``Tensor[..., 4]`` (x1, y1, x2, y2).

    Example:
        >>> anchor_centers(torch.tensor([[0., 2., 4., 6.]]))
        tensor([[2., 4.]])
    """
    cx = (anchors[..., 2] + anchors[..., 0]) / 2
    cy = (anchors[..., 3] + anchors[..., 1]) / 2
    return torch.stack([cx, cy], dim=-1)


class Integral(nn.Module):
    """Expected value of each discretised box side: ``sum_i softmax(x)_i * i``, ``i = 0..reg_max``.

    The fixed support ``project`` (``0, 1, ..., reg_max``) is a state_dict buffer, as in v2.

    Args:
        reg_max: Largest value of the support.

    Example:
        >>> Integral(reg_max=4)(torch.zeros(1, 20))
        tensor([[2., 2., 2., 2.]])
    """

    project: torch.Tensor

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., 4 * (reg_max + 1)]`` (any layout that flattens by side) -> ``[N, 4]``."""
        x = F.softmax(x.reshape(-1, self.reg_max + 1), dim=1)
        return F.linear(x, self.project.type_as(x)).reshape(-1, 4)


@MODELS.register_module()
class GFLHead(AnchorHead):
    """GFL head: ``stacked_convs`` GN conv towers, a QFL score conv and a distribution conv.

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each input feature map.
        stacked_convs: 3x3 convs per tower.
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers.
        loss_dfl: Distribution Focal Loss config.
        bbox_coder: Point-distance coder config (``DistancePointBBoxCoder``).
        reg_max: Largest distance (in strides) of the discrete support.
        feat_channels: Channels of the towers.
        anchor_generator: Prior generator config; one anchor per location is required.
        reg_decoded_bbox: Accepted for v2 compatibility (GFL always regresses decoded boxes).
        loss_cls: Classification loss config (``QualityFocalLoss``).
        loss_bbox: Box loss config on decoded boxes (``GIoULoss``).
        train_cfg: ``assigner`` (ATSS), ``allowed_border``, ``pos_weight``.
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``.
        init_cfg: Initialisation config.

    Example:
        >>> head = GFLHead(3, 8, stacked_convs=1, feat_channels=8,
        ...                norm_cfg=dict(type='GN', num_groups=2))
        >>> scores, dists = head([torch.rand(1, 8, s, s) for s in [8, 4, 2, 1, 1]])
        >>> scores[0].shape, dists[0].shape
        (torch.Size([1, 3, 8, 8]), torch.Size([1, 68, 8, 8]))
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        stacked_convs: int = 4,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        loss_dfl: Cfg | None = None,
        bbox_coder: Cfg | None = None,
        reg_max: int = 16,
        feat_channels: int = 256,
        anchor_generator: Cfg | None = None,
        reg_decoded_bbox: bool = False,
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = (
            norm_cfg if norm_cfg is not None else dict(type="GN", num_groups=32, requires_grad=True)
        )
        self.reg_max = reg_max
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            anchor_generator=anchor_generator or dict(
                type="AnchorGenerator", ratios=[1.0], octave_base_scale=8,
                scales_per_octave=1, strides=[8, 16, 32, 64, 128],
            ),
            bbox_coder=bbox_coder or dict(type="DistancePointBBoxCoder"),
            reg_decoded_bbox=reg_decoded_bbox,
            loss_cls=loss_cls or dict(
                type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0
            ),
            loss_bbox=loss_bbox or dict(type="GIoULoss", loss_weight=2.0),
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg if init_cfg is not None else dict(
                type="Normal", layer="Conv2d", std=0.01,
                override=dict(type="Normal", name="gfl_cls", std=0.01, bias_prob=0.01),
            ),
        )  # fmt: skip
        # v2: GFL never samples, whatever the config says
        self.sampling = False
        if train_cfg:
            self.sampler = build_module(dict(type="PseudoSampler"), TASK_UTILS)
        self.integral = Integral(self.reg_max)
        self.loss_dfl = build_module(
            loss_dfl or dict(type="DistributionFocalLoss", loss_weight=0.25), MODELS
        )

    def _init_layers(self) -> None:
        if self.num_base_priors != 1:
            raise ValueError(
                f"GFLHead needs one anchor per location, the anchor generator gives "
                f"{self.num_base_priors}"
            )
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            channels = self.in_channels if i == 0 else self.feat_channels
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(
                    ConvModule(
                        channels,
                        self.feat_channels,
                        3,
                        stride=1,
                        padding=1,
                        conv_cfg=self.conv_cfg,
                        norm_cfg=self.norm_cfg,
                    )
                )
        self.gfl_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.gfl_reg = nn.Conv2d(self.feat_channels, 4 * (self.reg_max + 1), 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: scores ``[B, C, H, W]`` and side logits ``[B, 4 * (reg_max + 1), H, W]``."""
        return multi_apply(self.forward_single, feats, list(self.scales))

    def forward_single(  # type: ignore[override]
        self, x: torch.Tensor, scale: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cls_feat = x
        reg_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.gfl_cls(cls_feat), scale(self.gfl_reg(reg_feat)).float()

    # ---------------------------------------------------------------- targets
    def get_targets(
        self,
        anchor_list: Sequence[Sequence[torch.Tensor]],
        valid_flag_list: Sequence[Sequence[torch.Tensor]],
        gt_bboxes_list: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        gt_bboxes_ignore_list: Sequence[torch.Tensor | None] | None = None,
        gt_labels_list: Sequence[torch.Tensor | None] | None = None,
        label_channels: int = 1,
        unmap_outputs: bool = True,
        return_sampling_results: bool = False,
    ) -> tuple[Any, ...] | None:
        """ATSS targets (see :func:`atss_targets`); the anchors come first in the tuple."""
        if self.train_cfg is None:
            raise ValueError("GFLHead.get_targets needs a train_cfg")
        return atss_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes_list,
            img_metas,
            assigner=self.assigner,
            sampler=self.sampler,
            num_classes=self.num_classes,
            train_cfg=self.train_cfg,
            gt_bboxes_ignore_list=gt_bboxes_ignore_list,
            gt_labels_list=gt_labels_list,
            unmap_outputs=unmap_outputs,
        )

    # ------------------------------------------------------------------ losses
    def loss_single(  # type: ignore[override]
        self,
        anchors: torch.Tensor,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        stride: Sequence[int],
        num_total_samples: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level: QFL, un-normalised GIoU and DFL, and the sum of the positives' weights."""
        if stride[0] != stride[1]:
            raise ValueError(f"GFLHead needs square strides, got {tuple(stride)}")
        anchors = anchors.reshape(-1, 4)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4 * (self.reg_max + 1))
        bbox_targets = bbox_targets.reshape(-1, 4)
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        score = label_weights.new_zeros(labels.shape)
        if len(pos_inds) > 0:
            pos_bbox_pred = bbox_pred[pos_inds]
            # everything in units of the stride
            pos_centers = anchor_centers(anchors[pos_inds]) / stride[0]
            weight_targets = cls_score.detach().sigmoid().max(dim=1)[0][pos_inds]
            pos_decoded = self.bbox_coder.decode(pos_centers, self.integral(pos_bbox_pred))
            pos_decoded_targets = bbox_targets[pos_inds] / stride[0]
            score[pos_inds] = bbox_overlaps(
                pos_decoded.detach(), pos_decoded_targets, is_aligned=True
            )
            pred_corners = pos_bbox_pred.reshape(-1, self.reg_max + 1)
            target_corners = self.bbox_coder.encode(
                pos_centers, pos_decoded_targets, self.reg_max
            ).reshape(-1)
            loss_bbox = self.loss_bbox(
                pos_decoded, pos_decoded_targets, weight=weight_targets, avg_factor=1.0
            )
            loss_dfl = self.loss_dfl(
                pred_corners,
                target_corners,
                weight=weight_targets[:, None].expand(-1, 4).reshape(-1),
                avg_factor=4.0,
            )
        else:
            loss_bbox = bbox_pred.sum() * 0
            loss_dfl = bbox_pred.sum() * 0
            weight_targets = bbox_pred.new_tensor(0)
        loss_cls = self.loss_cls(
            cls_score, (labels, score), weight=label_weights, avg_factor=num_total_samples
        )
        return loss_cls, loss_bbox, loss_dfl, weight_targets.sum()

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[Cfg],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox`` and ``loss_dfl``, one tensor per level.

        QFL is averaged over the positives; GIoU and DFL are weighted by each positive's best
        class score and averaged over the sum of those weights (over all levels).
        """
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        if len(featmap_sizes) != self.prior_generator.num_levels:
            raise ValueError(
                f"{len(featmap_sizes)} feature levels for {self.prior_generator.num_levels} "
                "anchor levels"
            )
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, img_metas, device=device)
        targets = self.get_targets(
            anchor_list,
            valid_flag_list,
            gt_bboxes,
            img_metas,
            gt_bboxes_ignore_list=gt_bboxes_ignore,
            gt_labels_list=gt_labels,
        )
        if targets is None:
            raise RuntimeError("no anchor lies inside an image: check img_shape/pad_shape")
        anchors, labels, label_weights, bbox_targets, _, num_total_pos, _ = targets
        num_total_samples = reduce_mean(
            torch.tensor(num_total_pos, dtype=torch.float, device=device)
        ).item()
        num_total_samples = max(num_total_samples, 1.0)
        losses_cls, losses_bbox, losses_dfl, weight_sums = multi_apply(
            self.loss_single,
            anchors,
            cls_scores,
            bbox_preds,
            labels,
            label_weights,
            bbox_targets,
            self.prior_generator.strides,
            num_total_samples=num_total_samples,
        )
        avg_factor = reduce_mean(sum(weight_sums)).clamp_(min=1).item()
        return dict(
            loss_cls=losses_cls,
            loss_bbox=[loss / avg_factor for loss in losses_bbox],
            loss_dfl=[loss / avg_factor for loss in losses_dfl],
        )

    # --------------------------------------------------------------- inference
    def _get_bboxes_single(
        self,
        cls_score_list: Sequence[torch.Tensor],
        bbox_pred_list: Sequence[torch.Tensor],
        score_factor_list: Sequence[torch.Tensor | None],
        mlvl_priors: Sequence[torch.Tensor],
        img_meta: Cfg,
        cfg: Cfg | None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> Any:
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError("GFLHead: no test_cfg for post-processing")
        img_shape = img_meta["img_shape"]
        nms_pre = cfg.get("nms_pre", -1)
        mlvl_bboxes, mlvl_scores, mlvl_labels = [], [], []
        for cls_score, bbox_pred, stride, priors in zip(
            cls_score_list, bbox_pred_list, self.prior_generator.strides, mlvl_priors, strict=True
        ):
            distances = self.integral(bbox_pred.permute(1, 2, 0)) * stride[0]
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            scores, labels, _, filtered = filter_scores_and_topk(
                scores, cfg["score_thr"], nms_pre, dict(bbox_pred=distances, priors=priors)
            )
            assert filtered is not None
            bboxes = self.bbox_coder.decode(
                anchor_centers(filtered["priors"]), filtered["bbox_pred"], max_shape=img_shape
            )
            mlvl_bboxes.append(bboxes)
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
        return bbox_post_process(
            mlvl_scores,
            mlvl_labels,
            mlvl_bboxes,
            img_meta["scale_factor"],
            cfg,
            rescale=rescale,
            with_nms=with_nms,
        )
