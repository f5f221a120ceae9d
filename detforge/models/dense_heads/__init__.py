"""Dense (one-stage and RPN) heads."""

from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.atss_head import ATSSHead
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.dense_heads.fcos_head import FCOSHead
from detforge.models.dense_heads.gfl_head import GFLHead
from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.models.dense_heads.rpn_head import RPNHead
from detforge.models.dense_heads.ssd_head import AscendSSDHead, SSDHead
from detforge.models.dense_heads.vfnet_head import VFNetHead
from detforge.models.dense_heads.yolo_head import YOLOV3Head
from detforge.models.dense_heads.yolof_head import YOLOFHead

__all__ = [
    "ATSSHead",
    "AnchorFreeHead",
    "AnchorHead",
    "AscendSSDHead",
    "BaseDenseHead",
    "FCOSHead",
    "GFLHead",
    "RPNHead",
    "RetinaHead",
    "SSDHead",
    "VFNetHead",
    "YOLOFHead",
    "YOLOV3Head",
]
