"""``PISARetinaHead``: RetinaNet's head trained with PISA's ISR-P and CARL (v2).

The loss flattens every image's anchors, scores, deltas and targets into one batch (image by
image, levels in order), optionally re-weights the positives' classification weights by
:func:`detforge.models.losses.pisa_loss.isr_p` (``train_cfg.isr``; no gradient), computes
``loss_cls`` and ``loss_bbox`` once over that batch (averaged over the positives, plus the
sampled negatives when sampling) and, with ``train_cfg.carl``, adds ``loss_carl`` (sigmoid
scores, averaged over the positives). The rest is :class:`RetinaHead`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.models.losses.pisa_loss import carl_loss, isr_p
from detforge.registry import MODELS
from detforge.structures import ImgMeta

__all__ = ["PISARetinaHead"]


def _flat(per_level: Sequence[torch.Tensor], channels: int) -> torch.Tensor:
    """``[B, n_l, c]`` (or ``[B, c * a, H, W]`` maps) of every level as ``[B * sum n_l, c]``,
    image by image."""
    num_imgs = per_level[0].size(0)
    parts = [
        (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).reshape(num_imgs, -1, channels)
        for t in per_level
    ]
    return torch.cat(parts, 1).reshape(-1, channels)


@MODELS.register_module()
class PISARetinaHead(RetinaHead):
    """:class:`RetinaHead` with PISA's losses (module docstring); ``train_cfg`` may add
    ``isr`` (``k``, ``bias``) and ``carl`` (``k``, ``bias``)."""

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = RetinaHead.TRAIN_CFG_KEYS | {"isr", "carl"}

    def loss(  # type: ignore[override]  # one tensor per loss, not per level
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss_cls``, ``loss_bbox`` and, with ``train_cfg.carl``, ``loss_carl``."""
        assert self.train_cfg is not None
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        num_total_samples = t.num_total_pos + (t.num_total_neg if self.sampling else 0)
        label_channels = self.cls_out_channels if self.use_sigmoid_cls else 1
        scores = _flat(cls_scores, label_channels)
        deltas = _flat(bbox_preds, 4)
        labels = _flat([x[..., None] for x in t.labels], 1).reshape(-1)
        label_weights = _flat([x[..., None] for x in t.label_weights], 1).reshape(-1)
        anchors = _flat(t.anchors, 4)
        bbox_targets = _flat(t.bbox_targets, 4)
        bbox_weights = _flat(t.bbox_weights, 4)
        targets: Any = (labels, label_weights, bbox_targets, bbox_weights)
        isr = self.train_cfg.get("isr")
        if isr is not None:
            with torch.no_grad():
                targets = isr_p(
                    scores,
                    deltas,
                    targets,
                    anchors,
                    t.sampling_results,
                    self.loss_cls,
                    self.bbox_coder,
                    **isr,
                    num_class=self.num_classes,
                )
        labels, label_weights, bbox_targets, bbox_weights = targets
        losses = dict(
            loss_cls=self.loss_cls(scores, labels, label_weights, avg_factor=num_total_samples),
            loss_bbox=self.loss_bbox(
                deltas, bbox_targets, bbox_weights, avg_factor=num_total_samples
            ),
        )
        carl = self.train_cfg.get("carl")
        if carl is not None:
            losses.update(
                carl_loss(
                    scores,
                    labels,
                    deltas,
                    bbox_targets,
                    self.loss_bbox,
                    **carl,
                    avg_factor=t.num_total_pos,
                    sigmoid=True,
                    num_class=self.num_classes,
                )
            )
        return losses
