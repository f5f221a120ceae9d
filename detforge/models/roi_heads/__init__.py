"""Second-stage (RoI) heads, RoI extractors and box heads."""

from detforge.models.roi_heads.base_roi_head import BaseRoIHead
from detforge.models.roi_heads.bbox_heads import BBoxHead
from detforge.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detforge.models.roi_heads.convfc_bbox_head import (
    ConvFCBBoxHead,
    Shared2FCBBoxHead,
    Shared4Conv1FCBBoxHead,
)
from detforge.models.roi_heads.dii_head import DIIHead, DynamicConv
from detforge.models.roi_heads.double_bbox_head import DoubleConvFCBBoxHead
from detforge.models.roi_heads.double_roi_head import DoubleHeadRoIHead
from detforge.models.roi_heads.dynamic_mask_head import DynamicMaskHead
from detforge.models.roi_heads.dynamic_roi_head import DynamicRoIHead
from detforge.models.roi_heads.grid_head import GridHead
from detforge.models.roi_heads.grid_roi_head import GridRoIHead
from detforge.models.roi_heads.htc_heads import FusedSemanticHead, HTCMaskHead
from detforge.models.roi_heads.htc_roi_head import HybridTaskCascadeRoIHead
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.models.roi_heads.mask_scoring_roi_head import MaskScoringRoIHead
from detforge.models.roi_heads.maskiou_head import MaskIoUHead
from detforge.models.roi_heads.pisa_roi_head import PISARoIHead
from detforge.models.roi_heads.point_heads import CoarseMaskHead, MaskPointHead
from detforge.models.roi_heads.point_rend_roi_head import PointRendRoIHead
from detforge.models.roi_heads.roi_extractors import GenericRoIExtractor, SingleRoIExtractor
from detforge.models.roi_heads.scnet_heads import (
    FeatureRelayHead,
    GlobalContextHead,
    SCNetBBoxHead,
    SCNetMaskHead,
    SCNetSemanticHead,
)
from detforge.models.roi_heads.scnet_roi_head import SCNetRoIHead
from detforge.models.roi_heads.shared_heads import ResLayer
from detforge.models.roi_heads.sparse_roi_head import SparseRoIHead
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead

__all__ = [
    "BBoxHead",
    "BaseRoIHead",
    "CascadeRoIHead",
    "CoarseMaskHead",
    "ConvFCBBoxHead",
    "DIIHead",
    "DoubleConvFCBBoxHead",
    "DoubleHeadRoIHead",
    "DynamicConv",
    "DynamicMaskHead",
    "DynamicRoIHead",
    "FCNMaskHead",
    "FeatureRelayHead",
    "FusedSemanticHead",
    "GenericRoIExtractor",
    "GlobalContextHead",
    "GridHead",
    "GridRoIHead",
    "HTCMaskHead",
    "HybridTaskCascadeRoIHead",
    "MaskIoUHead",
    "MaskPointHead",
    "MaskScoringRoIHead",
    "PISARoIHead",
    "PointRendRoIHead",
    "ResLayer",
    "SCNetBBoxHead",
    "SCNetMaskHead",
    "SCNetRoIHead",
    "SCNetSemanticHead",
    "Shared2FCBBoxHead",
    "Shared4Conv1FCBBoxHead",
    "SingleRoIExtractor",
    "SparseRoIHead",
    "StandardRoIHead",
]
