"""Detectors with the MMDetection v2 API."""

from detforge.models.detectors.atss import ATSS
from detforge.models.detectors.autoassign import AutoAssign
from detforge.models.detectors.base import BaseDetector, parse_losses
from detforge.models.detectors.cascade_rcnn import CascadeRCNN
from detforge.models.detectors.ddod import DDOD
from detforge.models.detectors.fast_rcnn import FastRCNN
from detforge.models.detectors.fcos import FCOS
from detforge.models.detectors.fovea import FOVEA
from detforge.models.detectors.fsaf import FSAF
from detforge.models.detectors.gfl import GFL
from detforge.models.detectors.grid_rcnn import GridRCNN
from detforge.models.detectors.mask_rcnn import MaskRCNN
from detforge.models.detectors.paa import PAA
from detforge.models.detectors.rpn import RPN
from detforge.models.detectors.single_stage import RetinaNet, SingleStageDetector
from detforge.models.detectors.tood import TOOD
from detforge.models.detectors.two_stage import FasterRCNN, TwoStageDetector
from detforge.models.detectors.vfnet import VFNet

__all__ = [
    "ATSS",
    "DDOD",
    "FCOS",
    "FOVEA",
    "FSAF",
    "GFL",
    "PAA",
    "RPN",
    "TOOD",
    "AutoAssign",
    "BaseDetector",
    "CascadeRCNN",
    "FastRCNN",
    "FasterRCNN",
    "GridRCNN",
    "MaskRCNN",
    "RetinaNet",
    "SingleStageDetector",
    "TwoStageDetector",
    "VFNet",
    "parse_losses",
]
