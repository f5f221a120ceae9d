"""``PISARoIHead``: the RoI head of PISA (Cao et al., "Prime Sample Attention in Object
Detection", CVPR 2020), as in v2.

Training is :class:`StandardRoIHead`'s with three changes:

- with a :class:`ScoreHLRSampler` (ISR-N) the sampled negatives' classification weights are
  the sampler's importance weights (``neg_label_weights`` of its sampling results);
- ``train_cfg.isr`` (``k``, ``bias``) re-weights the positives' classification weights by
  :func:`detforge.models.losses.pisa_loss.isr_p` (ISR-P) before the box loss;
- ``train_cfg.carl`` (``k``, ``bias``, ...) adds ``loss_carl``
  (:func:`detforge.models.losses.pisa_loss.carl_loss`).

Testing is :class:`StandardRoIHead`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from detforge.models.losses.pisa_loss import carl_loss, isr_p
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead
from detforge.models.task_modules.samplers import ScoreHLRSampler
from detforge.registry import MODELS
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi

__all__ = ["PISARoIHead"]


@MODELS.register_module()
class PISARoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` with PISA's ISR-N, ISR-P and CARL (module docstring); the
    arguments of :class:`StandardRoIHead`, plus ``train_cfg.isr`` and ``train_cfg.carl``."""

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = StandardRoIHead.TRAIN_CFG_KEYS | {"isr", "carl"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(self.bbox_sampler, ScoreHLRSampler) and self.bbox_sampler.context is None:
            self.bbox_sampler.context = self

    def _bbox_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """The box head's losses with ISR-N/ISR-P weights and, with ``carl``, ``loss_carl``."""
        assert self.train_cfg is not None
        rois = bbox2roi([res.bboxes for res in sampling_results])
        results = self._bbox_forward(x, rois)
        targets = self.bbox_head.get_targets(sampling_results, gt_bboxes, gt_labels, self.train_cfg)
        label_weights = targets[1]
        start = 0
        for res in sampling_results:
            num_pos, num_neg = res.pos_inds.numel(), res.neg_inds.numel()
            if res.neg_label_weights is not None:
                label_weights[start + num_pos : start + num_pos + num_neg] = res.neg_label_weights
            start += num_pos + num_neg
        cls_score, bbox_pred = results["cls_score"], results["bbox_pred"]
        num_classes = self.bbox_head.num_classes
        isr = self.train_cfg.get("isr")
        if isr is not None:
            targets = isr_p(
                cls_score,
                bbox_pred,
                targets,
                rois,
                sampling_results,
                self.bbox_head.loss_cls,
                self.bbox_head.bbox_coder,
                **isr,
                num_class=num_classes,
            )
        losses = self.bbox_head.loss(cls_score, bbox_pred, rois, *targets)
        carl = self.train_cfg.get("carl")
        if carl is not None:
            losses.update(
                carl_loss(
                    cls_score,
                    targets[0],
                    bbox_pred,
                    targets[2],
                    self.bbox_head.loss_bbox,
                    **carl,
                    num_class=num_classes,
                )
            )
        return dict(results, loss_bbox=losses, rois=rois, bbox_targets=targets)
