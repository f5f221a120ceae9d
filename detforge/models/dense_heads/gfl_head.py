"""``GFLHead``: Generalized Focal Loss head (Li et al. 2020), numerically MMDetection v2.28's.

The head is ATSS-shaped (one square anchor per location, ATSS assignment) but predicts

- a joint classification/quality score per class, trained with Quality Focal Loss against the
  IoU of the decoded box (0 for negatives), and
- each box side as a discrete distribution over ``0..reg_max`` (in units of the level's
  stride), read out by :class:`Integral` and trained with GIoU on the decoded box plus
  Distribution Focal Loss on the distributions.

Targets are ATSS's (:func:`~detforge.models.dense_heads.anchor_targets.anchor_targets` with the
ATSS assigner), with the ground-truth boxes themselves as box targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.base_dense_head import GN32, conv_tower, prior_init_cfg
from detforge.models.layers.scale import Scale
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, Cfg, build_module, plain_cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_overlaps
from detforge.utils.dist import reduce_mean

__all__ = ["GFLHead", "Integral", "anchor_centers"]

_GFL_ANCHORS: Cfg = MappingProxyType(
    dict(
        type="AnchorGenerator",
        ratios=[1.0],
        octave_base_scale=8,
        scales_per_octave=1,
        strides=[8, 16, 32, 64, 128],
    )
)
_DISTANCES: Cfg = MappingProxyType(dict(type="DistancePointBBoxCoder"))
_QFL: Cfg = MappingProxyType(
    dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0)
)
_GIOU: Cfg = MappingProxyType(dict(type="GIoULoss", loss_weight=2.0))
_DFL: Cfg = MappingProxyType(dict(type="DistributionFocalLoss", loss_weight=0.25))


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

    Takes :class:`AnchorHead`'s arguments plus the following.

    Args:
        stacked_convs: 3x3 convs per tower.
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers.
        loss_dfl: Distribution Focal Loss config.
        bbox_coder: Point-distance coder config (``DistancePointBBoxCoder``).
        reg_max: Largest distance (in strides) of the discrete support.
        anchor_generator: Prior generator config; one anchor per location is required.
        loss_cls: Classification loss config (``QualityFocalLoss``).
        loss_bbox: Box loss config on decoded boxes (``GIoULoss``).
        init_cfg: Initialisation config (``None``: the 0.01 prior on ``gfl_cls``).

    ``reg_decoded_bbox`` is accepted for v2 compatibility: GFL always regresses decoded boxes.
    ``train_cfg`` holds the ``assigner`` (ATSS), ``allowed_border`` and ``pos_weight``.

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
        norm_cfg: Cfg | None = GN32,
        loss_dfl: Cfg | nn.Module = _DFL,
        bbox_coder: Cfg | object = _DISTANCES,
        reg_max: int = 16,
        anchor_generator: Cfg | object = _GFL_ANCHORS,
        loss_cls: Cfg | nn.Module = _QFL,
        loss_bbox: Cfg | nn.Module = _GIOU,
        init_cfg: Any = None,
        **kwargs: Any,
    ) -> None:
        self.stacked_convs = stacked_convs
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.reg_max = reg_max
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            anchor_generator=anchor_generator,
            bbox_coder=bbox_coder,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            init_cfg=prior_init_cfg("gfl_cls") if init_cfg is None else init_cfg,
            **kwargs,
        )
        # GFL regresses decoded boxes whatever the config says; v2: it never samples either
        self.reg_decoded_bbox = True
        self.sampling = False
        if self.train_cfg:
            self.sampler = PseudoSampler()
        self.integral = Integral(self.reg_max)
        self.loss_dfl = build_module(loss_dfl, MODELS)

    def _init_layers(self) -> None:
        if self.num_base_priors != 1:
            raise InvalidArgumentError(
                f"GFLHead needs one anchor per location, the anchor generator gives "
                f"{self.num_base_priors}"
            )
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.gfl_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.gfl_reg = nn.Conv2d(self.feat_channels, 4 * (self.reg_max + 1), 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    def _tower(self) -> nn.Sequential:
        return conv_tower(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg
        )

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: scores ``[B, C, H, W]`` and side logits ``[B, 4 * (reg_max + 1), H, W]``."""
        return multi_apply(self.forward_single, feats, list(self.scales))

    def forward_single(  # type: ignore[override]  # v2's signature: the level's Scale
        self, x: torch.Tensor, scale: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cls_feat = self.cls_convs(x)
        reg_feat = self.reg_convs(x)
        return self.gfl_cls(cls_feat), scale(self.gfl_reg(reg_feat)).float()

    # ------------------------------------------------------------------ losses
    def loss_single(  # type: ignore[override]  # v2's signature: anchors first, the stride
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
            raise InvalidArgumentError(f"GFLHead needs square strides, got {tuple(stride)}")
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
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls``, ``loss_bbox`` and ``loss_dfl``, one tensor per level.

        QFL is averaged over the positives; GIoU and DFL are weighted by each positive's best
        class score and averaged over the sum of those weights (over all levels).
        """
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        losses_cls, losses_bbox, losses_dfl, weight_sums = multi_apply(
            self.loss_single,
            t.anchors,
            cls_scores,
            bbox_preds,
            t.labels,
            t.label_weights,
            t.bbox_targets,
            self.prior_generator.strides,
            num_total_samples=self._num_pos_avg(t.num_total_pos, cls_scores[0].device),
        )
        avg_factor = reduce_mean(sum(weight_sums)).clamp_(min=1).item()
        return dict(
            loss_cls=losses_cls,
            loss_bbox=[loss / avg_factor for loss in losses_bbox],
            loss_dfl=[loss / avg_factor for loss in losses_dfl],
        )

    # --------------------------------------------------------------- inference
    def _flat_bbox_pred(self, bbox_pred: torch.Tensor, level: int) -> torch.Tensor:
        """The expected side distances, in pixels."""
        stride: int = self.prior_generator.strides[level][0]
        distances: torch.Tensor = self.integral(bbox_pred.permute(1, 2, 0))
        return distances * stride

    def _decode_bboxes(
        self, priors: torch.Tensor, bbox_pred: torch.Tensor, max_shape: Any
    ) -> torch.Tensor:
        """The distances are measured from the anchors' centres."""
        return super()._decode_bboxes(anchor_centers(priors), bbox_pred, max_shape)
