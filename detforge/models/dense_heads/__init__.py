"""Dense (one-stage and RPN) heads."""

from detforge.models.dense_heads.anchor_free_head import AnchorFreeHead
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.atss_head import ATSSHead
from detforge.models.dense_heads.autoassign_head import AutoAssignHead
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.dense_heads.ddod_head import DDODHead
from detforge.models.dense_heads.fcos_head import FCOSHead
from detforge.models.dense_heads.fovea_head import FoveaHead
from detforge.models.dense_heads.free_anchor_retina_head import FreeAnchorRetinaHead
from detforge.models.dense_heads.fsaf_head import FSAFHead
from detforge.models.dense_heads.gfl_head import GFLHead
from detforge.models.dense_heads.paa_head import PAAHead
from detforge.models.dense_heads.pisa_retinanet_head import PISARetinaHead
from detforge.models.dense_heads.retina_head import RetinaHead
from detforge.models.dense_heads.retina_sepbn_head import RetinaSepBNHead
from detforge.models.dense_heads.rpn_head import RPNHead
from detforge.models.dense_heads.tood_head import TOODHead
from detforge.models.dense_heads.vfnet_head import VFNetHead

__all__ = [
    "ATSSHead",
    "AnchorFreeHead",
    "AnchorHead",
    "AutoAssignHead",
    "BaseDenseHead",
    "DDODHead",
    "FCOSHead",
    "FSAFHead",
    "FoveaHead",
    "FreeAnchorRetinaHead",
    "GFLHead",
    "PAAHead",
    "PISARetinaHead",
    "RPNHead",
    "RetinaHead",
    "RetinaSepBNHead",
    "TOODHead",
    "VFNetHead",
]
