"""Detectors with the MMDetection v2 API."""

from detforge.models.detectors.atss import ATSS
from detforge.models.detectors.autoassign import AutoAssign
from detforge.models.detectors.base import BaseDetector, parse_losses
from detforge.models.detectors.cascade_rcnn import CascadeRCNN
from detforge.models.detectors.centernet import CenterNet
from detforge.models.detectors.cornernet import CornerNet
from detforge.models.detectors.ddod import DDOD
from detforge.models.detectors.detr import DETR, DeformableDETR
from detforge.models.detectors.fast_rcnn import FastRCNN
from detforge.models.detectors.fcos import FCOS
from detforge.models.detectors.fovea import FOVEA
from detforge.models.detectors.fsaf import FSAF
from detforge.models.detectors.gfl import GFL
from detforge.models.detectors.grid_rcnn import GridRCNN
from detforge.models.detectors.htc import HybridTaskCascade, SCNet
from detforge.models.detectors.mask_rcnn import MaskRCNN
from detforge.models.detectors.mask_scoring_rcnn import MaskScoringRCNN, PointRend
from detforge.models.detectors.nasfcos import NASFCOS
from detforge.models.detectors.paa import PAA
from detforge.models.detectors.reppoints_detector import RepPointsDetector
from detforge.models.detectors.rpn import RPN
from detforge.models.detectors.single_stage import RetinaNet, SingleStageDetector
from detforge.models.detectors.sparse_rcnn import SparseRCNN
from detforge.models.detectors.tood import TOOD
from detforge.models.detectors.two_stage import FasterRCNN, TwoStageDetector
from detforge.models.detectors.vfnet import VFNet
from detforge.models.detectors.yolo import YOLOF, YOLOV3
from detforge.models.detectors.yolox import YOLOX

__all__ = [
    "ATSS",
    "DDOD",
    "DETR",
    "FCOS",
    "FOVEA",
    "FSAF",
    "GFL",
    "NASFCOS",
    "PAA",
    "RPN",
    "TOOD",
    "YOLOF",
    "YOLOV3",
    "YOLOX",
    "AutoAssign",
    "BaseDetector",
    "CascadeRCNN",
    "CenterNet",
    "CornerNet",
    "DeformableDETR",
    "FastRCNN",
    "FasterRCNN",
    "GridRCNN",
    "HybridTaskCascade",
    "MaskRCNN",
    "MaskScoringRCNN",
    "PointRend",
    "RepPointsDetector",
    "RetinaNet",
    "SCNet",
    "SingleStageDetector",
    "SparseRCNN",
    "TwoStageDetector",
    "VFNet",
    "parse_losses",
]
