"""``HybridTaskCascade`` and ``SCNet``: two-stage detectors whose cascade RoI heads may carry a
semantic branch trained on ``gt_semantic_seg`` (v2)."""

from __future__ import annotations

from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS

__all__ = ["HybridTaskCascade", "SCNet"]


@MODELS.register_module()
class HybridTaskCascade(TwoStageDetector):
    """Hybrid Task Cascade; the arguments of :class:`TwoStageDetector`.

    ``roi_head`` is a ``HybridTaskCascadeRoIHead`` and ``train_cfg.rcnn`` a list with one entry
    per stage. With a semantic head (``htc_r50_fpn_1x_coco.py``) training needs
    ``gt_semantic_seg`` (``LoadAnnotations(with_seg=True)``, ``SegRescale(scale_factor=1/8)``,
    ``Collect`` it); ``simple_test`` returns per image ``(bbox_results, segm_results)``.
    """

    @property
    def with_semantic(self) -> bool:
        return bool(getattr(self.roi_head, "with_semantic", False))


@MODELS.register_module()
class SCNet(TwoStageDetector):
    """SCNet (sample consistency network); the arguments of :class:`TwoStageDetector`.

    ``roi_head`` is an ``SCNetRoIHead``: a box cascade, one mask head fed with the last box
    head's relayed features, semantic and global-context branches.
    """

    @property
    def with_semantic(self) -> bool:
        return bool(getattr(self.roi_head, "with_semantic", False))
