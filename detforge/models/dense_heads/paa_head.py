"""``PAAHead``: Probabilistic Anchor Assignment with IoU prediction (Kim & Lee 2020), MMDetection
v2.28 numerics.

The layers are :class:`ATSSHead`'s; its centerness branch (``atss_centerness``) predicts the IoU
of the decoded box. Training (see :mod:`~detforge.models.dense_heads.paa_assign`): a max-IoU
assignment proposes candidates, PAA's Gaussian-mixture split of their losses keeps the
positives; then over all anchors of the batch the focal loss is averaged over
``max(positives, images)``, the box loss (``loss_bbox``, on decoded boxes) is weighted by each
positive's IoU with its ground truth and averaged over the sum of those IoUs, and the IoU branch
(``loss_iou``, the head's ``loss_centerness``) learns that IoU, averaged over the positives.
Counts are per process, as in v2 (no all-reduce).

Test: per level the ``nms_pre`` anchors with the best ``sqrt(class prob * IoU prob)``, decoded and
clipped to the image, then class-wise NMS on those scores above ``score_thr`` and, with
``score_voting``, PAA's score voting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.atss_head import ATSSHead
from detforge.models.dense_heads.base_dense_head import Detections
from detforge.models.dense_heads.paa_assign import (
    COVARIANCE_TYPES,
    levels_to_images,
    paa_reassign,
    score_voting,
)
from detforge.ops import multiclass_nms
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_overlaps

__all__ = ["PAAHead"]

_EPS = 1e-12  # lower bound of the IoU weights of the box loss


@MODELS.register_module()
class PAAHead(ATSSHead):
    """PAA head: :class:`ATSSHead`'s layers, PAA's assignment and post-processing.

    Takes :class:`ATSSHead`'s arguments plus:

    Args:
        topk: Lowest-loss candidates per level and ground truth fitted by the mixture.
        score_voting: Apply score voting after NMS.
        covariance_type: ``sklearn.mixture.GaussianMixture``'s covariance type (``'full'``,
            ``'tied'``, ``'diag'`` or ``'spherical'``).

    Training needs scikit-learn (``pip install scikit-learn``).

    Raises:
        ValueError: ``covariance_type`` is not one of the four.

    Example:
        >>> head = PAAHead(num_classes=2, in_channels=8, feat_channels=8, stacked_convs=1,
        ...                norm_cfg=dict(type='GN', num_groups=4),
        ...                anchor_generator=dict(type='AnchorGenerator', ratios=[1.0],
        ...                    octave_base_scale=8, scales_per_octave=1, strides=[8]))
        >>> cls, reg, iou = head([torch.zeros(1, 8, 4, 4)])
        >>> tuple(iou[0].shape)
        (1, 1, 4, 4)
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        topk: int = 9,
        score_voting: bool = True,
        covariance_type: str = "diag",
        **kwargs: Any,
    ) -> None:
        if covariance_type not in COVARIANCE_TYPES:
            raise InvalidArgumentError(
                f"PAAHead: covariance_type={covariance_type!r} is not one of {COVARIANCE_TYPES}"
            )
        self.topk = topk
        self.with_score_voting = score_voting
        self.covariance_type = covariance_type
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)

    # ------------------------------------------------------------------ losses
    def get_pos_loss(
        self,
        anchors: torch.Tensor,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        label: torch.Tensor,
        label_weight: torch.Tensor,
        bbox_target: torch.Tensor,
        bbox_weight: torch.Tensor,
        pos_inds: torch.Tensor,
    ) -> torch.Tensor:
        """``Tensor[P]``: each candidate's unnormalised focal loss (summed over the classes)
        plus its box loss, on one image's flattened ``[N, ...]`` maps."""
        if len(pos_inds) == 0:
            return cls_score.new_zeros(0)
        decoded = self.bbox_coder.decode(anchors[pos_inds], bbox_pred[pos_inds])
        loss_cls = self.loss_cls(
            cls_score[pos_inds],
            label[pos_inds],
            label_weight[pos_inds],
            avg_factor=1.0,
            reduction_override="none",
        )
        loss_bbox = self.loss_bbox(
            decoded,
            bbox_target[pos_inds],
            bbox_weight[pos_inds],
            avg_factor=1.0,
            reduction_override="none",
        )
        pos_loss: torch.Tensor = loss_bbox + loss_cls.sum(-1)
        return pos_loss

    def loss(  # type: ignore[override]  # v2's signature: the IoU maps third
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        iou_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``loss_bbox`` and ``loss_iou`` (see the module docstring)."""
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        num_level_anchors = [level.size(1) for level in t.anchors]
        anchors = torch.cat(t.anchors, 1)  # [B, N, 4], every image's (unmapped) anchors
        labels = torch.cat(t.labels, 1)
        label_weights = torch.cat(t.label_weights, 1)
        bbox_targets = torch.cat(t.bbox_targets, 1)
        bbox_weights = torch.cat(t.bbox_weights, 1)
        scores = [s.reshape(-1, self.cls_out_channels) for s in levels_to_images(cls_scores)]
        deltas = [p.reshape(-1, 4) for p in levels_to_images(bbox_preds)]
        ious = [p.reshape(-1, 1) for p in levels_to_images(iou_preds)]

        new_labels, num_pos = [], 0
        for i, sampling in enumerate(t.sampling_results):
            pos_inds = ((labels[i] >= 0) & (labels[i] < self.num_classes)).nonzero().view(-1)
            pos_losses = self.get_pos_loss(
                anchors[i],
                scores[i],
                deltas[i],
                labels[i],
                label_weights[i],
                bbox_targets[i],
                bbox_weights[i],
                pos_inds,
            )
            with torch.no_grad():
                kept = paa_reassign(
                    pos_losses,
                    pos_inds,
                    sampling.pos_assigned_gt_inds,
                    num_level_anchors,
                    self.topk,
                    self.covariance_type,
                )
            image_labels = labels[i].clone()
            if len(pos_inds):
                dropped = pos_inds[(pos_inds.unsqueeze(1) != kept).all(1)]
                image_labels[dropped] = self.num_classes
                num_pos += len(kept)
            new_labels.append(image_labels)

        flat_scores = torch.cat(scores)
        flat_deltas = torch.cat(deltas)
        flat_ious = torch.cat(ious)
        flat_labels = torch.cat(new_labels)
        flat_anchors = anchors.reshape(-1, 4)
        flat_targets = bbox_targets.reshape(-1, 4)
        pos = ((flat_labels >= 0) & (flat_labels < self.num_classes)).nonzero().reshape(-1)
        loss_cls = self.loss_cls(
            flat_scores,
            flat_labels,
            label_weights.reshape(-1),
            avg_factor=max(num_pos, len(img_metas)),  # at least one per image
        )
        if num_pos:
            pos_decoded = self.bbox_coder.decode(flat_anchors[pos], flat_deltas[pos])
            pos_targets = flat_targets[pos]
            iou_target = bbox_overlaps(pos_decoded.detach(), pos_targets, is_aligned=True)
            loss_iou = self.loss_centerness(
                flat_ious[pos], iou_target.unsqueeze(-1), avg_factor=num_pos
            )
            loss_bbox = self.loss_bbox(
                pos_decoded,
                pos_targets,
                iou_target.clamp(min=_EPS),
                avg_factor=iou_target.sum(),
            )
        else:
            loss_iou = flat_ious.sum() * 0
            loss_bbox = flat_deltas.sum() * 0
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou)

    # ------------------------------------------------------------ inference
    def get_bboxes(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        score_factors: Sequence[torch.Tensor] | None = None,
        img_metas: Sequence[ImgMeta] | None = None,
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])``; the IoU maps are the score
        factors.

        Raises:
            ValueError: ``with_nms=False`` (PAA's voting needs the NMS output, so v2 has no
                test-time augmentation for it) or no IoU maps.
        """
        if not with_nms:
            raise InvalidArgumentError(
                "PAAHead supports only with_nms=True: its score voting needs the NMS output, so "
                "there is no test-time augmentation (aug_test) for PAA, as in v2"
            )
        if score_factors is None:
            raise InvalidArgumentError("PAAHead.get_bboxes needs the IoU maps as score_factors")
        return super().get_bboxes(
            cls_scores, bbox_preds, score_factors, img_metas, cfg, rescale, with_nms
        )

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
    ) -> Detections:
        cfg = self._test_cfg(cfg)
        nms_pre = cfg.get("nms_pre", -1)
        mlvl_bboxes, mlvl_scores, mlvl_ious = [], [], []
        for cls_score, bbox_pred, iou_pred, priors in zip(
            cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, strict=True
        ):
            assert iou_pred is not None  # get_bboxes checked
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            deltas = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            iou = iou_pred.permute(1, 2, 0).reshape(-1).sigmoid()
            if 0 < nms_pre < scores.shape[0]:
                best = (scores * iou[:, None]).sqrt().max(dim=1).values
                keep = best.topk(nms_pre).indices
                priors, deltas, scores, iou = priors[keep], deltas[keep], scores[keep], iou[keep]
            mlvl_bboxes.append(
                self.bbox_coder.decode(priors, deltas, max_shape=img_meta["img_shape"])
            )
            mlvl_scores.append(scores)
            mlvl_ious.append(iou)
        bboxes = torch.cat(mlvl_bboxes)
        if rescale:
            bboxes = bboxes / bboxes.new_tensor(img_meta["scale_factor"])
        scores = torch.cat(mlvl_scores)
        scores = torch.cat([scores, scores.new_zeros(scores.shape[0], 1)], dim=1)  # background
        nms_scores = (scores * torch.cat(mlvl_ious)[:, None]).sqrt()
        det_bboxes, det_labels = multiclass_nms(
            bboxes, nms_scores, cfg["score_thr"], cfg["nms"], cfg["max_per_img"]
        )
        if self.with_score_voting and len(det_bboxes) > 0:
            det_bboxes, det_labels = score_voting(
                det_bboxes, det_labels, bboxes, nms_scores, cfg["score_thr"]
            )
        return det_bboxes, det_labels
