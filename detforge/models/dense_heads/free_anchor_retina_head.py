"""``FreeAnchorRetinaHead``: FreeAnchor's learning-to-match losses (Zhang et al. 2019) on
RetinaNet's head, MMDetection v2.28 numerics.

No assigner: each ground truth gets a bag of its ``pre_anchor_topk`` highest-IoU anchors.

- Positive bag loss, per ground truth: ``P = p_cls * exp(-L_box)`` over its bag (``p_cls`` the
  sigmoid score of its class, ``L_box`` the unreduced box loss of the encoded target summed over
  the 4 deltas); the bag probability is the mean-max ``sum(w * P) / sum(w)`` with ``w = 1 / (1 -
  P)``; the loss ``alpha * BCE(bag, 1)``, summed and divided by the number of ground truths.
- Negative bag loss, per (anchor, class): with ``q`` the probability that the anchor's decoded
  box belongs to an object of that class, ``(IoU - bbox_thr) / (max IoU of the object - bbox_thr)``
  clipped to ``[0, 1]`` and maximised over the objects of the class (no gradient), ``r = p_cls *
  (1 - q)`` clipped to ``[1e-12, 1 - 1e-12]`` gives ``(1 - alpha) * r ** gamma * BCE(r, 0)``,
  summed and divided by ``ground truths * pre_anchor_topk``.

Test-time post-processing is RetinaNet's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.registry import MODELS
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_overlaps

__all__ = ["FreeAnchorRetinaHead", "object_class_box_prob"]

_EPS = 1e-12


def object_class_box_prob(
    gt_labels: torch.Tensor,
    object_box_iou: torch.Tensor,
    num_classes: int,
    bbox_thr: float,
) -> torch.Tensor:
    """``Tensor[A, C]``: per anchor and class, the highest saturated-IoU probability over the
    ground truths of that class (0 for classes without one).

    Args:
        gt_labels: ``Tensor[G]`` classes of the ground truths.
        object_box_iou: ``Tensor[G, A]`` IoU of each ground truth with each predicted box.
        num_classes: ``C``.
        bbox_thr: IoU at which the probability starts to rise above 0.

    Example:
        >>> iou = torch.tensor([[0.9, 0.7, 0.5], [0.2, 0.8, 0.0]])
        >>> object_class_box_prob(torch.tensor([1, 0]), iou, 2, 0.6)
        tensor([[0.0000, 1.0000],
                [1.0000, 0.3333],
                [0.0000, 0.0000]])
    """
    num_anchors = object_box_iou.size(1)
    if len(gt_labels) == 0:
        return object_box_iou.new_zeros(num_anchors, num_classes)
    t1 = bbox_thr
    t2 = object_box_iou.max(dim=1, keepdim=True).values.clamp(min=t1 + 1e-12)
    object_box_prob = ((object_box_iou - t1) / (t2 - t1)).clamp(min=0, max=1)
    per_class = object_box_prob.new_zeros(num_classes, num_anchors)
    index = gt_labels.view(-1, 1).expand(-1, num_anchors)
    per_class.scatter_reduce_(0, index, object_box_prob, "amax", include_self=True)
    return per_class.t()


@MODELS.register_module()
class FreeAnchorRetinaHead(RetinaHead):
    """RetinaNet's head trained with FreeAnchor's bag losses (see the module docstring).

    Takes :class:`RetinaHead`'s arguments plus:

    Args:
        pre_anchor_topk: Anchors in each ground truth's bag.
        bbox_thr: IoU threshold of the saturated box probability (usually the NMS IoU).
        gamma: Focal exponent of the negative bag loss.
        alpha: Weight of the positive bag loss (the negative one gets ``1 - alpha``).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        pre_anchor_topk: int = 50,
        bbox_thr: float = 0.6,
        gamma: float = 2.0,
        alpha: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.pre_anchor_topk = pre_anchor_topk
        self.bbox_thr = bbox_thr
        self.gamma = gamma
        self.alpha = alpha

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """``positive_bag_loss`` and ``negative_bag_loss`` (crowd boxes are not used, as in
        v2).

        Raises:
            ValueError: ``gt_labels`` is missing.
        """
        if gt_labels is None:
            raise InvalidArgumentError("FreeAnchorRetinaHead needs gt_labels")
        featmap_sizes = self._featmap_sizes(cls_scores)
        anchor_list, _ = self.get_anchors(featmap_sizes, img_metas, device=cls_scores[0].device)
        anchors = [torch.cat(per_image) for per_image in anchor_list]
        b = cls_scores[0].size(0)
        flat_scores = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(b, -1, self.cls_out_channels) for s in cls_scores], 1
        )
        flat_deltas = torch.cat([p.permute(0, 2, 3, 1).reshape(b, -1, 4) for p in bbox_preds], 1)
        cls_prob = torch.sigmoid(flat_scores)
        box_prob, positive_losses, num_pos = [], [], 0
        for anchors_i, labels_i, gts_i, cls_prob_i, deltas_i in zip(
            anchors, gt_labels, gt_bboxes, cls_prob, flat_deltas, strict=True
        ):
            with torch.no_grad():
                iou = bbox_overlaps(gts_i, self.bbox_coder.decode(anchors_i, deltas_i))
                box_prob.append(
                    object_class_box_prob(labels_i, iou, self.cls_out_channels, self.bbox_thr)
                )
            # the bag of each ground truth: its pre_anchor_topk highest-IoU anchors
            _, matched = torch.topk(
                bbox_overlaps(gts_i, anchors_i), self.pre_anchor_topk, dim=1, sorted=False
            )
            matched_cls_prob = torch.gather(
                cls_prob_i[matched], 2, labels_i.view(-1, 1, 1).repeat(1, self.pre_anchor_topk, 1)
            ).squeeze(2)
            matched_anchors = anchors_i[matched]
            targets = self.bbox_coder.encode(
                matched_anchors, gts_i.unsqueeze(dim=1).expand_as(matched_anchors)
            )
            loss_bbox = self.loss_bbox(deltas_i[matched], targets, reduction_override="none").sum(
                -1
            )
            num_pos += len(gts_i)
            positive_losses.append(self.positive_bag_loss(matched_cls_prob, torch.exp(-loss_bbox)))
        positive_loss = torch.cat(positive_losses).sum() / max(1, num_pos)
        negative_loss = self.negative_bag_loss(cls_prob, torch.stack(box_prob)).sum() / max(
            1, num_pos * self.pre_anchor_topk
        )
        if num_pos == 0:
            positive_loss = flat_deltas.sum() * 0
        return dict(positive_bag_loss=positive_loss, negative_bag_loss=negative_loss)

    def positive_bag_loss(
        self, matched_cls_prob: torch.Tensor, matched_box_prob: torch.Tensor
    ) -> torch.Tensor:
        """``Tensor[G]``: ``alpha * BCE(mean-max(p_cls * p_box), 1)`` of each bag ``[G, K]``."""
        matched_prob = matched_cls_prob * matched_box_prob
        weight = 1 / torch.clamp(1 - matched_prob, 1e-12, None)
        weight /= weight.sum(dim=1).unsqueeze(dim=-1)
        bag_prob = (weight * matched_prob).sum(dim=1)
        return self.alpha * F.binary_cross_entropy(
            bag_prob, torch.ones_like(bag_prob), reduction="none"
        )

    def negative_bag_loss(self, cls_prob: torch.Tensor, box_prob: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, A, C]``: ``(1 - alpha) * r ** gamma * BCE(r, 0)``, ``r = p_cls * (1 -
        p_box)`` clipped away from 0 and 1."""
        prob = (cls_prob * (1 - box_prob)).clamp(min=_EPS, max=1 - _EPS)
        loss = prob**self.gamma * F.binary_cross_entropy(
            prob, torch.zeros_like(prob), reduction="none"
        )
        return (1 - self.alpha) * loss
