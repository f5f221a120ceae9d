"""``MaskScoringRCNN`` and ``PointRend``: Mask R-CNN variants whose RoI heads score or refine
the masks (v2)."""

from __future__ import annotations

from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS

__all__ = ["MaskScoringRCNN", "PointRend"]


@MODELS.register_module()
class MaskScoringRCNN(TwoStageDetector):
    """Mask Scoring R-CNN; the arguments of :class:`TwoStageDetector`.

    ``roi_head`` is a ``MaskScoringRoIHead``; ``simple_test`` returns per image
    ``(bbox_results, (segm_results, mask_scores))``, the v2 format that the COCO evaluation
    reads (``split_mask_scores``).
    """


@MODELS.register_module()
class PointRend(TwoStageDetector):
    """PointRend; the arguments of :class:`TwoStageDetector`.

    ``roi_head`` is a ``PointRendRoIHead`` (``CoarseMaskHead`` + ``MaskPointHead``);
    ``train_cfg.rcnn`` adds ``num_points``, ``oversample_ratio``, ``importance_sample_ratio``
    and ``test_cfg.rcnn`` ``subdivision_steps``, ``subdivision_num_points``, ``scale_factor``.
    """
