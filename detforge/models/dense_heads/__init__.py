"""Dense (one-stage and RPN) heads."""

from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.atss_head import ATSSHead
from detforge.models.dense_heads.autoassign_head import AutoAssignHead
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.dense_heads.centernet_head import CenterNetHead
from detforge.models.dense_heads.centripetal_head import CentripetalHead
from detforge.models.dense_heads.corner_head import CornerHead
from detforge.models.dense_heads.ddod_head import DDODHead
from detforge.models.dense_heads.deformable_detr_head import DeformableDETRHead
from detforge.models.dense_heads.detr_head import DETRHead
from detforge.models.dense_heads.embedding_rpn_head import EmbeddingRPNHead
from detforge.models.dense_heads.fcos_head import FCOSHead
from detforge.models.dense_heads.fovea_head import FoveaHead
from detforge.models.dense_heads.free_anchor_retina_head import FreeAnchorRetinaHead
from detforge.models.dense_heads.fsaf_head import FSAFHead
from detforge.models.dense_heads.ga_retina_head import GARetinaHead
from detforge.models.dense_heads.ga_rpn_head import GARPNHead
from detforge.models.dense_heads.gfl_head import GFLHead
from detforge.models.dense_heads.guided_anchor_head import GuidedAnchorHead
from detforge.models.dense_heads.nasfcos_head import NASFCOSHead
from detforge.models.dense_heads.paa_head import PAAHead
from detforge.models.dense_heads.pisa_retinanet_head import PISARetinaHead
from detforge.models.dense_heads.reppoints_head import RepPointsHead
from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.models.dense_heads.retina_sepbn_head import RetinaSepBNHead
from detforge.models.dense_heads.rpn_head import RPNHead
from detforge.models.dense_heads.sabl_retina_head import SABLRetinaHead
from detforge.models.dense_heads.ssd_head import AscendSSDHead, SSDHead
from detforge.models.dense_heads.tood_head import TOODHead
from detforge.models.dense_heads.vfnet_head import VFNetHead
from detforge.models.dense_heads.yolo_head import YOLOV3Head
from detforge.models.dense_heads.yolof_head import YOLOFHead
from detforge.models.dense_heads.yolox_head import YOLOXHead

__all__ = [
    "ATSSHead",
    "AnchorFreeHead",
    "AnchorHead",
    "AscendSSDHead",
    "AutoAssignHead",
    "BaseDenseHead",
    "CenterNetHead",
    "CentripetalHead",
    "CornerHead",
    "DDODHead",
    "DETRHead",
    "DeformableDETRHead",
    "EmbeddingRPNHead",
    "FCOSHead",
    "FSAFHead",
    "FoveaHead",
    "FreeAnchorRetinaHead",
    "GARPNHead",
    "GARetinaHead",
    "GFLHead",
    "GuidedAnchorHead",
    "NASFCOSHead",
    "PAAHead",
    "PISARetinaHead",
    "RPNHead",
    "RepPointsHead",
    "RetinaHead",
    "RetinaSepBNHead",
    "SABLRetinaHead",
    "SSDHead",
    "TOODHead",
    "VFNetHead",
    "YOLOFHead",
    "YOLOV3Head",
    "YOLOXHead",
]
