"""``BBoxHead``: the R-CNN box head's targets, losses, post-processing and cascade refinement
(v2); the conv/fc variants are in :mod:`detforge.models.roi_heads.convfc_bbox_head`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from detforge.errors import InvalidArgumentError
from detforge.models.layers import apply_init_cfg, build_linear_layer
from detforge.models.losses import accuracy
from detforge.models.utils import multi_apply
from detforge.ops import multiclass_nms
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module
from detforge.structures import ImgMeta

__all__ = ["BBoxHead", "cls_channels"]


def cls_channels(loss_cls: Any, num_classes: int) -> int:
    """Outputs of a box head's classifier: ``num_classes + 1`` (background last), or what a
    custom-channel loss asks for (``SeesawLoss``: ``num_classes + 2``)."""
    if getattr(loss_cls, "custom_cls_channels", False):
        return int(loss_cls.get_cls_channels(num_classes))
    return num_classes + 1


@MODELS.register_module()
class BBoxHead(nn.Module):
    """The plainest R-CNN head: (optional average pool), then fc_cls and fc_reg.

    Args:
        with_avg_pool: Average-pool the RoI features first.
        with_cls: Predict class scores (``num_classes + 1`` with background last).
        with_reg: Predict box deltas (per class unless ``reg_class_agnostic``).
        roi_feat_size: Spatial size of the RoI features.
        in_channels: Channels of the RoI features.
        num_classes: Foreground classes.
        bbox_coder: Box coder config.
        reg_class_agnostic: One box per RoI instead of one per class.
        reg_decoded_bbox: Regress decoded boxes (for IoU-type losses).
        reg_predictor_cfg: Layer of ``fc_reg`` (``dict(type='Linear')``).
        cls_predictor_cfg: Layer of ``fc_cls`` (``Linear`` or the cosine ``NormedLinear``).
        loss_cls: Classification loss config; a loss with ``custom_cls_channels``
            (``SeesawLoss``) sets the classifier's outputs, scores through its
            ``get_activation`` and reports its own accuracies.
        loss_bbox: Regression loss config.
        init_cfg: Initialisation; by default Normal(std=0.01) for fc_cls and
            Normal(std=0.001) for fc_reg.
    """

    def __init__(
        self,
        with_avg_pool: bool = False,
        with_cls: bool = True,
        with_reg: bool = True,
        roi_feat_size: int | tuple[int, int] = 7,
        in_channels: int = 256,
        num_classes: int = 80,
        bbox_coder: Cfg | None = None,
        reg_class_agnostic: bool = False,
        reg_decoded_bbox: bool = False,
        reg_predictor_cfg: Cfg | None = None,
        cls_predictor_cfg: Cfg | None = None,
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if not (with_cls or with_reg):
            raise InvalidArgumentError("BBoxHead needs with_cls or with_reg")
        self.with_avg_pool = with_avg_pool
        self.with_cls = with_cls
        self.with_reg = with_reg
        self.roi_feat_size = _pair(roi_feat_size)
        self.roi_feat_area = self.roi_feat_size[0] * self.roi_feat_size[1]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.reg_predictor_cfg = reg_predictor_cfg or dict(type="Linear")
        self.cls_predictor_cfg = cls_predictor_cfg or dict(type="Linear")
        self.bbox_coder = build_module(
            bbox_coder
            or dict(
                type="DeltaXYWHBBoxCoder",
                clip_border=True,
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2],
            ),
            TASK_UTILS,
        )
        self.loss_cls = build_module(
            loss_cls or dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0), MODELS
        )
        self.loss_bbox = build_module(
            loss_bbox or dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0), MODELS
        )
        features = in_channels
        if with_avg_pool:
            self.avg_pool = nn.AvgPool2d(self.roi_feat_size)
        else:
            features *= self.roi_feat_area
        if with_cls:
            self.fc_cls = build_linear_layer(
                self.cls_predictor_cfg, features, cls_channels(self.loss_cls, num_classes)
            )
        if with_reg:
            self.fc_reg = build_linear_layer(
                self.reg_predictor_cfg, features, 4 if reg_class_agnostic else 4 * num_classes
            )
        if init_cfg is None:
            init_cfg = []
            if with_cls:
                init_cfg.append(dict(type="Normal", std=0.01, override=dict(name="fc_cls")))
            if with_reg:
                init_cfg.append(dict(type="Normal", std=0.001, override=dict(name="fc_reg")))
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    @property
    def custom_cls_channels(self) -> bool:
        return bool(getattr(self.loss_cls, "custom_cls_channels", False))

    @property
    def custom_activation(self) -> bool:
        return bool(getattr(self.loss_cls, "custom_activation", False))

    @property
    def custom_accuracy(self) -> bool:
        return bool(getattr(self.loss_cls, "custom_accuracy", False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.with_avg_pool:
            x = self.avg_pool(x) if x.numel() > 0 else x.new_zeros(x.size(0), x.size(1), 1, 1)
        x = x.flatten(1)
        cls_score = self.fc_cls(x) if self.with_cls else None
        bbox_pred = self.fc_reg(x) if self.with_reg else None
        return cls_score, bbox_pred

    # ---------------------------------------------------------------- targets
    def _get_target_single(
        self,
        pos_bboxes: torch.Tensor,
        neg_bboxes: torch.Tensor,
        pos_gt_bboxes: torch.Tensor,
        pos_gt_labels: torch.Tensor,
        cfg: Cfg,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        num_pos, num_neg = pos_bboxes.size(0), neg_bboxes.size(0)
        num = num_pos + num_neg
        labels = pos_bboxes.new_full((num,), self.num_classes, dtype=torch.long)
        label_weights = pos_bboxes.new_zeros(num)
        bbox_targets = pos_bboxes.new_zeros(num, 4)
        bbox_weights = pos_bboxes.new_zeros(num, 4)
        if num_pos > 0:
            labels[:num_pos] = pos_gt_labels
            pos_weight = cfg["pos_weight"]
            label_weights[:num_pos] = 1.0 if pos_weight <= 0 else pos_weight
            if self.reg_decoded_bbox:
                bbox_targets[:num_pos, :] = pos_gt_bboxes
            else:
                bbox_targets[:num_pos, :] = self.bbox_coder.encode(pos_bboxes, pos_gt_bboxes)
            bbox_weights[:num_pos, :] = 1
        if num_neg > 0:
            label_weights[-num_neg:] = 1.0
        return labels, label_weights, bbox_targets, bbox_weights

    def get_targets(
        self,
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        rcnn_train_cfg: Cfg,
        concat: bool = True,
    ) -> tuple[Any, ...]:
        """Labels, label weights, box targets and weights for every sampled RoI."""
        outputs = multi_apply(
            self._get_target_single,
            [r.pos_bboxes for r in sampling_results],
            [r.neg_bboxes for r in sampling_results],
            [r.pos_gt_bboxes for r in sampling_results],
            [r.pos_gt_labels for r in sampling_results],
            cfg=rcnn_train_cfg,
        )
        if concat:
            return tuple(torch.cat(items, 0) for items in outputs)
        return outputs

    def loss(
        self,
        cls_score: torch.Tensor | None,
        bbox_pred: torch.Tensor | None,
        rois: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        bbox_weights: torch.Tensor,
        reduction_override: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``acc`` (percent) and ``loss_bbox`` (over positive RoIs); a loss that
        returns a dict (``SeesawLoss``: ``loss_cls_objectness``, ``loss_cls_classes``) gives
        its own names, and a custom-activation loss its own accuracies."""
        losses: dict[str, torch.Tensor] = {}
        if cls_score is not None:
            avg_factor = max(torch.sum(label_weights > 0).float().item(), 1.0)
            if cls_score.numel() > 0:
                loss_cls = self.loss_cls(
                    cls_score,
                    labels,
                    label_weights,
                    avg_factor=avg_factor,
                    reduction_override=reduction_override,
                )
                if isinstance(loss_cls, dict):
                    losses.update(loss_cls)
                else:
                    losses["loss_cls"] = loss_cls
                if self.custom_activation:
                    losses.update(self.loss_cls.get_accuracy(cls_score, labels))
                else:
                    losses["acc"] = accuracy(cls_score, labels)
        if bbox_pred is not None:
            pos = (labels >= 0) & (labels < self.num_classes)
            if pos.any():
                if self.reg_decoded_bbox:
                    bbox_pred = self.bbox_coder.decode(rois[:, 1:], bbox_pred)
                if self.reg_class_agnostic:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), 4)[pos]
                else:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), -1, 4)[pos, labels[pos]]
                losses["loss_bbox"] = self.loss_bbox(
                    pos_pred,
                    bbox_targets[pos],
                    bbox_weights[pos],
                    avg_factor=bbox_targets.size(0),
                    reduction_override=reduction_override,
                )
            else:
                losses["loss_bbox"] = bbox_pred[pos].sum()
        return losses

    # --------------------------------------------------------------- inference
    def get_bboxes(
        self,
        rois: torch.Tensor,
        cls_score: torch.Tensor | None,
        bbox_pred: torch.Tensor | None,
        img_shape: Sequence[int] | None,
        scale_factor: Any,
        rescale: bool = False,
        cfg: Cfg | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoded boxes and softmax scores (a custom-activation loss's scores), then (with
        ``cfg``) multi-class NMS (v2)."""
        scores: torch.Tensor | None = None
        if cls_score is not None:
            if self.custom_cls_channels:
                scores = self.loss_cls.get_activation(cls_score)
            else:
                scores = F.softmax(cls_score, dim=-1)
        if bbox_pred is not None:
            bboxes = self.bbox_coder.decode(rois[..., 1:], bbox_pred, max_shape=img_shape)
        else:
            bboxes = rois[:, 1:].clone()
            if img_shape is not None:
                bboxes[:, [0, 2]] = bboxes[:, [0, 2]].clamp(min=0, max=img_shape[1])
                bboxes[:, [1, 3]] = bboxes[:, [1, 3]].clamp(min=0, max=img_shape[0])
        if rescale and bboxes.size(0) > 0:
            factor = bboxes.new_tensor(scale_factor)
            bboxes = (bboxes.view(bboxes.size(0), -1, 4) / factor).view(bboxes.size(0), -1)
        if cfg is None:
            return bboxes, scores
        assert scores is not None
        det_bboxes, det_labels = multiclass_nms(
            bboxes, scores, cfg["score_thr"], cfg["nms"], cfg["max_per_img"]
        )[:2]
        return det_bboxes, det_labels

    # ------------------------------------------------------------ cascade refinement
    def regress_by_class(
        self,
        rois: torch.Tensor,
        label: torch.Tensor,
        bbox_pred: torch.Tensor,
        img_meta: ImgMeta,
    ) -> torch.Tensor:
        """Move each RoI by the deltas predicted for its class (v2 ``regress_by_class``).

        Args:
            rois: ``Tensor[N, 4]`` boxes or ``Tensor[N, 5]`` RoIs (batch index first; kept).
            label: ``Tensor[N]`` class whose deltas are applied (ignored when
                ``reg_class_agnostic``).
            bbox_pred: ``Tensor[N, 4]`` or ``Tensor[N, 4 * num_classes]`` deltas.
            img_meta: Needs ``img_shape``; the new boxes are clipped to it.

        Returns:
            The refined boxes, shaped like ``rois``.

        Example:
            >>> head = BBoxHead(in_channels=1, roi_feat_size=1, num_classes=2,
            ...                 reg_class_agnostic=True)
            >>> rois = torch.tensor([[0., 10., 10., 20., 20.]])
            >>> head.regress_by_class(rois, torch.tensor([1]), torch.zeros(1, 4),
            ...                       dict(img_shape=(32, 32, 3))).tolist()
            [[0.0, 10.0, 10.0, 20.0, 20.0]]
        """
        if rois.ndim != 2 or rois.size(1) not in (4, 5):
            raise InvalidArgumentError(
                f"regress_by_class: rois must be [N, 4] or [N, 5], got {tuple(rois.shape)}"
            )
        if not self.reg_class_agnostic:
            first = (label * 4).long()
            columns = torch.stack((first, first + 1, first + 2, first + 3), 1)
            bbox_pred = torch.gather(bbox_pred, 1, columns)
        if bbox_pred.size(1) != 4:
            raise InvalidArgumentError(
                f"regress_by_class: expected 4 deltas per RoI, got {tuple(bbox_pred.shape)}"
            )
        max_shape = img_meta["img_shape"]
        if rois.size(1) == 4:
            refined: torch.Tensor = self.bbox_coder.decode(rois, bbox_pred, max_shape=max_shape)
            return refined
        boxes = self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=max_shape)
        return torch.cat((rois[:, [0]], boxes), dim=1)

    def refine_bboxes(
        self,
        rois: torch.Tensor,
        labels: torch.Tensor,
        bbox_preds: torch.Tensor,
        pos_is_gts: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> list[torch.Tensor]:
        """Next cascade stage's proposals: every sampled RoI regressed by its label (v2).

        Positive RoIs that were ground-truth boxes added as proposals are dropped (they are
        added again by the next stage's sampler). Within each image the sampled RoIs are
        positives first, so ``pos_is_gts[i]`` flags the first RoIs of image ``i``.

        Args:
            rois: ``Tensor[N, 5]`` sampled RoIs of the whole batch.
            labels: ``Tensor[N]`` class of each RoI used to pick its deltas.
            bbox_preds: ``Tensor[N, 4]`` or ``Tensor[N, 4 * num_classes]``.
            pos_is_gts: Per image, ``Tensor[P_i]`` (1 where a positive is an added GT box).
            img_metas: Per image meta (``img_shape``).

        Returns:
            Per image, ``Tensor[n_i, 4]`` refined boxes.

        Example:
            >>> head = BBoxHead(in_channels=1, roi_feat_size=1, num_classes=2,
            ...                 reg_class_agnostic=True)
            >>> rois = torch.tensor([[0., 0., 0., 8., 8.], [0., 2., 2., 9., 9.]])
            >>> out = head.refine_bboxes(rois, torch.tensor([0, 1]), torch.zeros(2, 4),
            ...                          [torch.tensor([1], dtype=torch.uint8)],
            ...                          [dict(img_shape=(16, 16, 3))])
            >>> out[0].tolist()
            [[2.0, 2.0, 9.0, 9.0]]
        """
        img_ids = rois[:, 0].long().unique(sorted=True)
        if img_ids.numel() > len(img_metas) or (
            img_ids.numel() > 0 and int(img_ids.max()) >= len(img_metas)
        ):
            raise InvalidArgumentError(
                f"refine_bboxes: RoIs refer to images {img_ids.tolist()} but only "
                f"{len(img_metas)} img_metas were given"
            )
        if len(pos_is_gts) != len(img_metas):
            raise InvalidArgumentError(
                f"refine_bboxes: {len(pos_is_gts)} pos_is_gts for {len(img_metas)} images"
            )
        refined = []
        for i, meta in enumerate(img_metas):
            inds = torch.nonzero(rois[:, 0] == i, as_tuple=False).squeeze(1)
            boxes = self.regress_by_class(rois[inds, 1:], labels[inds], bbox_preds[inds], meta)
            keep = torch.ones(inds.numel(), dtype=torch.bool, device=rois.device)
            keep[: len(pos_is_gts[i])] = pos_is_gts[i].to(keep.device) == 0
            refined.append(boxes[keep])
        return refined
