"""``AutoAssignHead``: AutoAssign's differentiable label assignment (Zhu et al. 2020), MMDetection
v2.28 numerics.

FCOS's layers (conv biases on, the per-level :class:`Scale` output clamped at 0 and multiplied
by the stride, in training too) with the centerness branch as an objectness logit, and points
at the cell corners (offset 0). No assigner: every point inside a ground truth (strictly) is a
candidate of it.

- :class:`CenterPrior`: per class a learnable Gaussian ``exp(-((p - c) / stride - mean)^2 / (2
  sigma^2))`` (product over x and y) of a point's offset from the box centre, 0 outside the box
  (with ``force_topk``, a box without inside points takes its ``topk`` highest-prior points).
- Positive loss, per ground truth: ``P = sigmoid(score) * sigmoid(objectness)`` of its class
  times ``exp(-L_giou)`` (the unreduced, weighted GIoU loss of the decoded prediction against
  the box), weighted over its candidates by ``exp(3 P) * prior`` normalised to sum 1; BCE of the
  weighted sum against 1, times ``pos_loss_weight``, summed and divided by the ground truths
  (all-reduced, at least 1).
- Negative loss, per point and class: the joint confidence times ``1 - w`` for the classes of
  the boxes the point lies in (``w = 1 / (1 - IoU)`` min-max normalised over each box's
  candidates, IoU the best of the point's prediction over all boxes), else times 1; focal-like
  ``x^2 * BCE(x, 0)`` summed, times ``neg_loss_weight``, divided by the sum of all centre priors
  (all-reduced, at least 1).
- Centre loss: per image ``ground truths / sum of its centre priors`` (0 without candidates),
  averaged over the images, times ``center_loss_weight``.

Test: FCOS's, with ``sigmoid(objectness)`` as the score factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.fcos_head import FCOSHead
from detforge.models.dense_heads.paa_assign import levels_to_images
from detforge.models.layers.weight_init import bias_init_with_prob, normal_init
from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator
from detforge.registry import MODELS
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_overlaps
from detforge.utils.dist import reduce_mean

__all__ = ["AutoAssignHead", "CenterPrior", "points_inside_boxes"]

_EPS = 1e-12


def points_inside_boxes(
    points: torch.Tensor, gt_bboxes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inside [P, G] bool, distances [P, G, 4])``: the ``(left, top, right, bottom)``
    distances of each point to each box's sides, inside where all are positive.

    Example:
        >>> inside, _ = points_inside_boxes(torch.tensor([[1., 1.], [5., 5.]]),
        ...                                 torch.tensor([[0., 0., 4., 4.]]))
        >>> inside.view(-1).tolist()
        [True, False]
    """
    xs, ys = points[:, 0:1], points[:, 1:2]
    distances = torch.stack(
        (xs - gt_bboxes[:, 0], ys - gt_bboxes[:, 1], gt_bboxes[:, 2] - xs, gt_bboxes[:, 3] - ys),
        -1,
    )
    if gt_bboxes.size(0):
        inside = distances.min(-1).values > 0
    else:
        inside = distances.new_zeros((points.size(0), 0), dtype=torch.bool)
    return inside, distances


class CenterPrior(nn.Module):
    """AutoAssign's learnable per-class Gaussian prior around box centres (see the module
    docstring); parameters ``mean`` (zeros) and ``sigma`` (ones), ``[num_classes, 2]``."""

    def __init__(
        self,
        force_topk: bool = False,
        topk: int = 9,
        num_classes: int = 80,
        strides: Sequence[int] = (8, 16, 32, 64, 128),
    ) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(num_classes, 2))
        self.sigma = nn.Parameter(torch.ones(num_classes, 2))
        self.strides = list(strides)
        self.force_topk = force_topk
        self.topk = topk

    def forward(
        self,
        anchor_points_list: Sequence[torch.Tensor],
        gt_bboxes: torch.Tensor,
        labels: torch.Tensor,
        inside_gt_bbox_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prior [P, G], candidates [P, G] bool)`` of one image's points (per level
        ``[n_l, 2]``) and ground truths."""
        inside = inside_gt_bbox_mask.clone()
        num_points = sum(len(points) for points in anchor_points_list)
        if len(labels) == 0:
            return gt_bboxes.new_zeros(num_points, 0), inside
        centers = torch.stack(
            ((gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2, (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2),
            dim=1,
        )[None]
        mean, sigma = self.mean[labels][None], self.sigma[labels][None]
        priors = []
        for points, stride in zip(anchor_points_list, self.strides, strict=True):
            expanded = points[:, None, :].expand(points.size(0), len(gt_bboxes), 2)
            distance = ((expanded - centers) / float(stride) - mean) ** 2
            priors.append(torch.exp(-distance / (2 * sigma**2)).prod(dim=-1))
        prior = torch.cat(priors, dim=0)
        if self.force_topk:
            empty = torch.nonzero(inside.sum(0) == 0).reshape(-1)
            if empty.numel():
                top = prior[:, empty].topk(self.topk, dim=0)[1]
                inside[:, empty] = torch.scatter(
                    inside[:, empty], 0, top, torch.ones_like(top, dtype=torch.bool)
                )
        prior[~inside] = 0
        return prior, inside


def _minmax(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min() + _EPS) / (x.max() - x.min() + _EPS)


@MODELS.register_module()
class AutoAssignHead(FCOSHead):
    """AutoAssign head (see the module docstring).

    Takes :class:`FCOSHead`'s arguments (``conv_bias`` is always True) plus:

    Args:
        force_topk: Give boxes without inside points their ``topk`` best-prior points.
        topk: That number of points.
        pos_loss_weight: Weight of the positive loss.
        neg_loss_weight: Weight of the negative loss.
        center_loss_weight: Weight of the centre-prior loss.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        force_topk: bool = False,
        topk: int = 9,
        pos_loss_weight: float = 0.25,
        neg_loss_weight: float = 0.75,
        center_loss_weight: float = 0.75,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, conv_bias=True, **kwargs)
        strides = [s if isinstance(s, int) else s[0] for s in self.strides]
        self.center_prior = CenterPrior(
            force_topk=force_topk, topk=topk, num_classes=self.num_classes, strides=strides
        )
        self.pos_loss_weight = pos_loss_weight
        self.neg_loss_weight = neg_loss_weight
        self.center_loss_weight = center_loss_weight
        self.prior_generator = MlvlPointGenerator(self.strides, offset=0)

    def init_weights(self) -> None:
        super().init_weights()
        normal_init(self.conv_cls, std=0.01, bias=bias_init_with_prob(0.02))
        normal_init(self.conv_reg, std=0.01, bias=4.0)

    def forward_single(  # type: ignore[override]  # v2's signature: the level's Scale, stride
        self, x: torch.Tensor, scale: nn.Module, stride: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_score, bbox_pred, _, reg_feat = AnchorFreeHead.forward_single(self, x)
        objectness = self.conv_centerness(reg_feat)
        bbox_pred = scale(bbox_pred).float().clamp(min=0) * stride[0]
        return cls_score, bbox_pred, objectness

    # ------------------------------------------------------------------ losses
    def get_pos_loss_single(
        self,
        cls_score: torch.Tensor,
        objectness: torch.Tensor,
        reg_loss: torch.Tensor,
        gt_labels: torch.Tensor,
        center_prior_weights: torch.Tensor,
    ) -> torch.Tensor:
        """One image's weighted positive loss (probabilities ``[P, C]`` and ``[P, 1]``, box
        losses and priors ``[P, G]``)."""
        p_pos = (cls_score * objectness)[:, gt_labels] * torch.exp(-reg_loss)
        weight = torch.exp(p_pos * 3) * center_prior_weights
        weight = weight / weight.sum(0, keepdim=True).clamp(min=_EPS)
        bag = (p_pos * weight).sum(0)
        loss = F.binary_cross_entropy(bag, torch.ones_like(bag), reduction="none")
        return loss.sum() * self.pos_loss_weight

    def get_neg_loss_single(
        self,
        cls_score: torch.Tensor,
        objectness: torch.Tensor,
        gt_labels: torch.Tensor,
        ious: torch.Tensor,
        inside_gt_bbox_mask: torch.Tensor,
    ) -> torch.Tensor:
        """One image's weighted negative loss (``ious`` and the candidate mask ``[P, G]``)."""
        joint = cls_score * objectness
        neg_weight = torch.ones_like(joint)
        if len(gt_labels) > 0:
            gt_idx, point_idx = torch.nonzero(inside_gt_bbox_mask.t(), as_tuple=True)
            weight = 1 / (1 - ious.t()[gt_idx, point_idx]).clamp_(_EPS)
            for gt in range(len(gt_labels)):
                mine = gt_idx == gt
                if mine.any():
                    weight[mine] = _minmax(weight[mine])
            neg_weight[point_idx, gt_labels[gt_idx]] = 1 - weight
        logits = joint * neg_weight
        loss = logits**2 * F.binary_cross_entropy(
            logits, torch.zeros_like(logits), reduction="none"
        )
        return loss.sum() * self.neg_loss_weight

    def _box_losses(
        self,
        points: torch.Tensor,
        bbox_pred: torch.Tensor,
        distances: torch.Tensor,
        inside: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One image's GIoU losses ``[P, G]`` of each point's prediction against each box, and
        the best IoU of the prediction over the boxes on the candidates (0 elsewhere)."""
        num_points, num_gts = distances.shape[:2]
        expanded = points[:, None, :].expand(num_points, num_gts, 2).reshape(-1, 2)
        preds = bbox_pred[:, None, :].expand(num_points, num_gts, 4).reshape(-1, 4)
        decoded_preds = self.bbox_coder.decode(expanded, preds)
        decoded_targets = self.bbox_coder.decode(expanded, distances.reshape(-1, 4))
        with torch.no_grad():
            ious = bbox_overlaps(decoded_preds, decoded_targets, is_aligned=True)
            ious = ious.reshape(num_points, num_gts)
            if num_gts:
                ious = ious.max(dim=-1, keepdim=True).values.repeat(1, num_gts)
            ious[~inside] = 0
        loss = self.loss_bbox(
            decoded_preds, decoded_targets, weight=None, reduction_override="none"
        )
        return loss.reshape(num_points, num_gts), ious

    def loss(  # v2's signature: the objectness maps third, as FCOS's centerness
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        objectnesses: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_pos``, ``loss_neg`` and ``loss_center`` (ignore boxes unused, as in v2)."""
        all_num_gt = sum(len(boxes) for boxes in gt_bboxes)
        featmap_sizes = self._featmap_sizes(cls_scores)
        level_points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype, device=bbox_preds[0].device
        )
        points = torch.cat(level_points, dim=0)
        priors, masks, box_losses, ious = [], [], [], []
        image_preds = levels_to_images(bbox_preds)
        for boxes, labels, bbox_pred in zip(gt_bboxes, gt_labels, image_preds, strict=True):
            inside, distances = points_inside_boxes(points, boxes)
            prior, inside = self.center_prior(level_points, boxes, labels, inside)
            loss, iou = self._box_losses(points, bbox_pred, distances, inside)
            priors.append(prior)
            masks.append(inside)
            box_losses.append(loss)
            ious.append(iou)
        scores = [s.sigmoid() for s in levels_to_images(cls_scores)]
        objectness = [o.sigmoid() for o in levels_to_images(objectnesses)]
        pos_losses = [
            self.get_pos_loss_single(*args)
            for args in zip(scores, objectness, box_losses, gt_labels, priors, strict=True)
        ]
        pos_avg = reduce_mean(bbox_preds[0].new_tensor(all_num_gt)).clamp_(min=1)
        pos_loss = sum(pos_losses) / pos_avg
        neg_losses = [
            self.get_neg_loss_single(*args)
            for args in zip(scores, objectness, gt_labels, ious, masks, strict=True)
        ]
        neg_avg = reduce_mean(sum(p.data.sum() for p in priors)).clamp_(min=1)
        neg_loss = sum(neg_losses) / neg_avg
        center_losses = [
            len(boxes) / prior.sum().clamp_(min=_EPS) if inside.any() else prior.sum() * 0
            for boxes, prior, inside in zip(gt_bboxes, priors, masks, strict=True)
        ]
        center_loss = torch.stack(center_losses).mean() * self.center_loss_weight
        if all_num_gt == 0:
            pos_loss = image_preds[0].sum() * 0
            dummy = self.center_prior.mean.sum() * 0 + self.center_prior.sigma.sum() * 0
            center_loss = objectness[0].sum() * 0 + dummy
        return dict(loss_pos=pos_loss, loss_neg=neg_loss, loss_center=center_loss)
