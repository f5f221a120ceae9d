"""Detectors with the MMDetection v2 API."""

from detforge.models.detectors.base import DetectorMixin, parse_losses
from detforge.models.detectors.cascade_rcnn import CascadeRCNN
from detforge.models.detectors.mask_rcnn import MaskRCNN
from detforge.models.detectors.single_stage import RetinaNet, SingleStageDetector
from detforge.models.detectors.two_stage import RPN, FasterRCNN, TwoStageDetector

__all__ = [
    "RPN",
    "CascadeRCNN",
    "DetectorMixin",
    "FasterRCNN",
    "MaskRCNN",
    "RetinaNet",
    "SingleStageDetector",
    "TwoStageDetector",
    "parse_losses",
]
