"""``CascadeRCNN``: a two-stage detector whose RoI head is a ``CascadeRoIHead`` (v2)."""

from __future__ import annotations

from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS

__all__ = ["CascadeRCNN"]


@MODELS.register_module()
class CascadeRCNN(TwoStageDetector):
    """Cascade R-CNN and Cascade Mask R-CNN; the arguments of :class:`TwoStageDetector`.

    ``train_cfg.rcnn`` is a list with one entry per cascade stage. Losses are logged per stage
    (``s0.loss_cls``, ``s0.acc``, ``s0.loss_bbox``, ``s1.…``); ``simple_test`` returns the
    ensemble of all stages in the v2 format (with mask heads, per image
    ``(bbox_results, segm_results)``).
    """
