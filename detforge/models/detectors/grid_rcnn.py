"""``GridRCNN``: a two-stage detector whose RoI head is a ``GridRoIHead`` (v2)."""

from __future__ import annotations

from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS

__all__ = ["GridRCNN"]


@MODELS.register_module()
class GridRCNN(TwoStageDetector):
    """Grid R-CNN and Grid R-CNN Plus; the arguments of :class:`TwoStageDetector`.

    The box head classifies and the grid head places the boxes (see
    :mod:`detforge.models.roi_heads.grid_roi_head`); the losses add ``loss_grid``.
    """
