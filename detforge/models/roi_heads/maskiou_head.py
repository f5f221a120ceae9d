"""``MaskIoUHead`` (Mask Scoring R-CNN, v2): predicts the IoU of each predicted mask with its
ground truth, and its training target.

The head takes the mask RoI features ``[K, C, 14, 14]`` and the predicted mask of the RoI's
class, sigmoid and max-pooled 2x2 to ``[K, 1, 14, 14]``, concatenated; ``num_convs`` 3x3
convs (the last with stride 2) and ``num_fcs`` fcs with ReLU; ``fc_mask_iou`` gives one IoU
per class. At test time a detection's mask score is its box score times the predicted IoU of
its class.

Target (:func:`mask_iou_targets`, v2's numerics): for a positive RoI ``k`` with ground truth
``g``, the predicted mask is binarised as ``logits > mask_thr_binary`` (v2 compares the raw
logits with the threshold) and compared with the ``mask_size`` target; the area of the whole
ground-truth instance is recovered from the target's area and the fraction of the instance
that lies in the RoI::

    ratio_k = area(gt_g cropped to int(RoI_k)) / (area(gt_g) + 1e-7)
    full_k  = target_area_k / (ratio_k + 1e-7)
    iou_k   = overlap_k / (pred_area_k + full_k - overlap_k)

Only RoIs with ``iou_k > 0`` enter the loss (``MSELoss``, ``loss_mask_iou``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import _pair

from detforge.errors import InvalidArgumentError
from detforge.models.layers import apply_init_cfg
from detforge.models.roi_heads.mask_heads import as_instance_masks
from detforge.registry import MODELS, Cfg, build_module, plain_cfg

__all__ = ["MaskIoUHead", "mask_area_ratios", "mask_iou_targets"]

_IOU_LOSS: Cfg = MappingProxyType({"type": "MSELoss", "loss_weight": 0.5})
_IOU_INIT = (
    MappingProxyType({"type": "Kaiming", "override": {"name": "convs"}}),
    MappingProxyType({"type": "Caffe2Xavier", "override": {"name": "fcs"}}),
    MappingProxyType({"type": "Normal", "std": 0.01, "override": {"name": "fc_mask_iou"}}),
)


def mask_area_ratios(
    pos_proposals: torch.Tensor, pos_assigned_gt_inds: torch.Tensor, gt_masks: Any
) -> torch.Tensor:
    """``Tensor[P]``: the fraction of each positive's ground-truth instance inside the RoI
    (the RoI's coordinates truncated to integers, as v2).

    Example:
        >>> from detforge.structures.masks import BitmapMasks
        >>> masks = BitmapMasks(np.ones((1, 4, 4), np.uint8), 4, 4)
        >>> mask_area_ratios(torch.tensor([[0., 0., 2.9, 4.]]), torch.tensor([0]), masks)
        tensor([0.5000])
    """
    if pos_proposals.size(0) == 0:
        return pos_proposals.new_zeros((0,))
    masks = as_instance_masks(gt_masks, "MaskIoUHead")
    full_areas = masks.areas
    boxes = pos_proposals.detach().cpu().numpy().astype(np.int32)
    inds = pos_assigned_gt_inds.detach().cpu().numpy()
    ratios = [
        masks[int(g)].crop(box).areas[0] / (full_areas[int(g)] + 1e-7)
        for box, g in zip(boxes, inds, strict=True)
    ]
    return torch.from_numpy(np.stack(ratios)).float().to(pos_proposals.device)


def mask_iou_targets(
    pos_mask_pred: torch.Tensor,
    mask_targets: torch.Tensor,
    area_ratios: torch.Tensor,
    mask_thr_binary: float,
) -> torch.Tensor:
    """``Tensor[P]`` IoU targets (see the module docstring).

    Args:
        pos_mask_pred: ``Tensor[P, h, w]`` mask logits of the positives' classes.
        mask_targets: ``Tensor[P, h, w]`` binary targets.
        area_ratios: ``Tensor[P]`` from :func:`mask_area_ratios`.
        mask_thr_binary: Threshold applied to the logits.

    Example:
        >>> pred = torch.tensor([[[1., 1.], [0., 0.]]])
        >>> target = torch.tensor([[[1., 0.], [1., 0.]]])
        >>> mask_iou_targets(pred, target, torch.tensor([0.5]), 0.5)
        tensor([0.2000])
    """
    if area_ratios.shape[0] != mask_targets.shape[0]:
        raise InvalidArgumentError(
            f"mask_iou_targets: {area_ratios.shape[0]} area ratios for "
            f"{mask_targets.shape[0]} mask targets"
        )
    pred = (pos_mask_pred > mask_thr_binary).float()
    pred_areas = pred.sum((-1, -2))
    overlaps = (pred * mask_targets).sum((-1, -2))
    full_areas = mask_targets.sum((-1, -2)) / (area_ratios + 1e-7)
    return overlaps / (pred_areas + full_areas - overlaps)


@MODELS.register_module()
class MaskIoUHead(nn.Module):
    """Mask IoU head of Mask Scoring R-CNN (``mmdet`` v2).

    State-dict keys: ``convs.{i}``, ``fcs.{i}``, ``fc_mask_iou``.

    Args:
        num_convs: 3x3 convs (the last one with stride 2).
        num_fcs: Fully connected layers.
        roi_feat_size: Size of the mask RoI features.
        in_channels: Channels of the mask RoI features (the mask adds one).
        conv_out_channels: Channels of the convs.
        fc_out_channels: Width of the fcs.
        num_classes: Foreground classes (one IoU each).
        loss_iou: Loss config (default ``MSELoss(loss_weight=0.5)``).
        init_cfg: Initialisation (default Kaiming convs, Caffe2Xavier fcs,
            ``Normal(std=0.01)`` ``fc_mask_iou``).

    Example:
        >>> head = MaskIoUHead(num_convs=1, num_fcs=1, in_channels=4, conv_out_channels=4,
        ...                    fc_out_channels=8, num_classes=3)
        >>> head(torch.rand(2, 4, 14, 14), torch.rand(2, 28, 28)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        num_convs: int = 4,
        num_fcs: int = 2,
        roi_feat_size: int | tuple[int, int] = 14,
        in_channels: int = 256,
        conv_out_channels: int = 256,
        fc_out_channels: int = 1024,
        num_classes: int = 80,
        loss_iou: Cfg | nn.Module = _IOU_LOSS,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv_out_channels = conv_out_channels
        self.fc_out_channels = fc_out_channels
        self.num_classes = num_classes
        self.init_cfg = plain_cfg(list(_IOU_INIT) if init_cfg is None else init_cfg)
        self.convs = nn.ModuleList(
            nn.Conv2d(
                in_channels + 1 if i == 0 else conv_out_channels,
                conv_out_channels,
                3,
                stride=2 if i == num_convs - 1 else 1,
                padding=1,
            )
            for i in range(num_convs)
        )
        size = _pair(roi_feat_size)
        pooled_area = (size[0] // 2) * (size[1] // 2)
        self.fcs = nn.ModuleList(
            nn.Linear(
                conv_out_channels * pooled_area if i == 0 else fc_out_channels, fc_out_channels
            )
            for i in range(num_fcs)
        )
        self.fc_mask_iou = nn.Linear(fc_out_channels, num_classes)
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2d(2, 2)
        self.loss_iou = build_module(loss_iou, MODELS)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def forward(self, mask_feat: torch.Tensor, mask_pred: torch.Tensor) -> torch.Tensor:
        """``Tensor[K, num_classes]`` IoUs from RoI features ``[K, C, h, w]`` and the mask
        logits ``[K, 2h, 2w]`` of each RoI's class."""
        pooled = self.max_pool(mask_pred.sigmoid().unsqueeze(1))
        x = torch.cat((mask_feat, pooled), 1)
        for conv in self.convs:
            x = self.relu(conv(x))
        x = x.flatten(1)
        for fc in self.fcs:
            x = self.relu(fc(x))
        iou: torch.Tensor = self.fc_mask_iou(x)
        return iou

    def get_targets(
        self,
        sampling_results: Sequence[Any],
        gt_masks: Sequence[Any],
        mask_pred: torch.Tensor,
        mask_targets: torch.Tensor,
        rcnn_train_cfg: Cfg,
    ) -> torch.Tensor:
        """``Tensor[P]`` IoU targets of the positive RoIs (needs
        ``rcnn_train_cfg['mask_thr_binary']``)."""
        ratios = torch.cat(
            [
                mask_area_ratios(res.pos_bboxes, res.pos_assigned_gt_inds, masks)
                for res, masks in zip(sampling_results, gt_masks, strict=True)
            ]
        )
        if "mask_thr_binary" not in rcnn_train_cfg:
            raise KeyError("MaskIoUHead: train_cfg.rcnn needs mask_thr_binary")
        return mask_iou_targets(
            mask_pred, mask_targets, ratios, float(rcnn_train_cfg["mask_thr_binary"])
        )

    def loss(
        self, mask_iou_pred: torch.Tensor, mask_iou_targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss_mask_iou`` over the RoIs with a positive target (0 without any)."""
        pos = mask_iou_targets > 0
        if pos.any():
            loss = self.loss_iou(mask_iou_pred[pos], mask_iou_targets[pos])
        else:
            loss = mask_iou_pred.sum() * 0
        return dict(loss_mask_iou=loss)

    def get_mask_scores(
        self, mask_iou_pred: torch.Tensor, det_bboxes: torch.Tensor, det_labels: torch.Tensor
    ) -> list[np.ndarray]:
        """Per class the mask scores (box score x predicted IoU) of one image's detections."""
        inds = torch.arange(det_labels.size(0), device=det_labels.device)
        scores = (mask_iou_pred[inds, det_labels] * det_bboxes[inds, -1]).detach().cpu().numpy()
        labels = det_labels.cpu().numpy()
        return [scores[labels == i] for i in range(self.num_classes)]
