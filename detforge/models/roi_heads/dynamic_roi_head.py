"""``DynamicRoIHead``: Dynamic R-CNN's RoI head (Zhang et al., ECCV 2020), as in v2.

Training adapts two hyper-parameters to the proposals' quality as it goes:

- after assigning and sampling, each image records the ``iou_topk``-th largest IoU of its
  candidates with their ground truths (``max_overlaps``, the added ground truths at 1), and
  the batch records the images' mean;
- each batch records the ``beta_topk * num_imgs``-th smallest of its positives' mean absolute
  centre targets ``(|dx| + |dy|) / 2`` (none without positives);
- every ``update_iter_interval`` batches, the assigner's ``pos_iou_thr``, ``neg_iou_thr`` and
  ``min_pos_iou`` become ``max(initial_iou, mean of the recorded IoUs)`` and the box loss's
  SmoothL1 ``beta`` becomes ``min(initial_beta, median of the recorded targets)`` (kept as it
  is when nothing was recorded or the median is below 1e-15); the records start afresh.

The settings are ``train_cfg.rcnn.dynamic_rcnn`` (``iou_topk``, ``beta_topk``,
``update_iter_interval``, ``initial_iou``, ``initial_beta``). Testing is Faster R-CNN's.
v2 crashes on a batch without positives (``kthvalue`` of nothing); here, as in MMDetection
3, such a batch records no target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from detforge.errors import InvalidArgumentError
from detforge.models.losses import SmoothL1Loss
from detforge.models.roi_heads.base_roi_head import assign_and_sample
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead
from detforge.registry import MODELS, Cfg, check_cfg_keys
from detforge.structures import ImgMeta

__all__ = ["DynamicRoIHead"]

EPS = 1e-15
_DYNAMIC_KEYS = ("iou_topk", "beta_topk", "update_iter_interval", "initial_iou", "initial_beta")


class _RecordingAssigner:
    """An assigner that keeps every assignment it returns (the sampler then adds the
    ground truths to them in place)."""

    def __init__(self, assigner: Any) -> None:
        self.assigner = assigner
        self.results: list[Any] = []

    def assign(self, *args: Any, **kwargs: Any) -> Any:
        result = self.assigner.assign(*args, **kwargs)
        self.results.append(result)
        return result


@MODELS.register_module()
class DynamicRoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` with Dynamic R-CNN's training schedule (see the module
    docstring); the arguments of :class:`StandardRoIHead`.

    Raises:
        ValueError: the box head's loss is not a ``SmoothL1Loss``, or ``train_cfg`` has no
            complete ``dynamic_rcnn`` section.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = StandardRoIHead.TRAIN_CFG_KEYS | {"dynamic_rcnn"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.bbox_head.loss_bbox, SmoothL1Loss):
            raise InvalidArgumentError(
                "DynamicRoIHead: bbox_head.loss_bbox must be a SmoothL1Loss (its beta is "
                f"scheduled), got {type(self.bbox_head.loss_bbox).__name__}"
            )
        if self.train_cfg is not None:
            dynamic = self.train_cfg.get("dynamic_rcnn")
            missing = [k for k in _DYNAMIC_KEYS if k not in (dynamic or {})]
            if missing:
                raise InvalidArgumentError(
                    f"DynamicRoIHead: train_cfg.dynamic_rcnn lacks {missing}"
                )
            check_cfg_keys(dynamic, _DYNAMIC_KEYS, "train_cfg.dynamic_rcnn", self)
        #: the recorded IoUs (one per batch) and targets since the last update
        self.iou_history: list[float] = []
        self.beta_history: list[float] = []

    @property
    def _dynamic(self) -> Cfg:
        assert self.train_cfg is not None
        cfg: Cfg = self.train_cfg["dynamic_rcnn"]
        return cfg

    def _assign_and_sample(
        self,
        x: Sequence[torch.Tensor],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None,
    ) -> list[Any]:
        """Assign and sample, recording the batch's mean ``iou_topk``-th largest IoU."""
        recorder = _RecordingAssigner(self.bbox_assigner)
        results = assign_and_sample(
            recorder, self.bbox_sampler, x, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore
        )
        ious = []
        for assign in recorder.results:
            overlaps = assign.max_overlaps
            if overlaps.numel() > 0:
                k = min(int(self._dynamic["iou_topk"]), overlaps.numel())
                ious.append(float(torch.topk(overlaps, k)[0][-1]))
        if ious:
            self.iou_history.append(float(np.mean(ious)))
        return results

    def _bbox_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """The box losses, recording the ``beta_topk * num_imgs``-th smallest centre target."""
        results = super()._bbox_forward_train(x, sampling_results, gt_bboxes, gt_labels, img_metas)
        _, _, bbox_targets, bbox_weights = results["bbox_targets"]
        pos = bbox_weights[:, 0].nonzero().squeeze(1)
        if pos.numel() > 0:
            targets = bbox_targets[pos, :2].abs().mean(dim=1)
            k = min(int(self._dynamic["beta_topk"]) * len(sampling_results), pos.numel())
            self.beta_history.append(float(torch.kthvalue(targets, k)[0]))
        return results

    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
        gt_masks: Any = None,
    ) -> dict[str, torch.Tensor]:
        """:class:`StandardRoIHead`'s losses; every ``update_iter_interval`` batches the IoU
        thresholds and the SmoothL1 beta are updated (see the module docstring)."""
        losses = super().forward_train(
            x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore, gt_masks
        )
        if len(self.iou_history) % int(self._dynamic["update_iter_interval"]) == 0:
            self.update_hyperparameters()
        return losses

    def update_hyperparameters(self) -> tuple[float, float]:
        """Set the assigner's IoU thresholds and the SmoothL1 beta from the records (see the
        module docstring), clear the records, and return ``(iou_thr, beta)``."""
        dynamic = self._dynamic
        iou_thr = float(dynamic["initial_iou"])
        if self.iou_history:
            iou_thr = max(iou_thr, float(np.mean(self.iou_history)))
        self.iou_history = []
        self.bbox_assigner.pos_iou_thr = iou_thr
        self.bbox_assigner.neg_iou_thr = iou_thr
        self.bbox_assigner.min_pos_iou = iou_thr
        loss_bbox = self.bbox_head.loss_bbox
        beta = float(loss_bbox.beta)
        if self.beta_history and np.median(self.beta_history) >= EPS:
            beta = min(float(dynamic["initial_beta"]), float(np.median(self.beta_history)))
        self.beta_history = []
        loss_bbox.beta = beta
        return iou_thr, beta
