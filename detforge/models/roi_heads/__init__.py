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
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.models.roi_heads.pisa_roi_head import PISARoIHead
from detforge.models.roi_heads.roi_extractors import GenericRoIExtractor, SingleRoIExtractor
from detforge.models.roi_heads.shared_heads import ResLayer
from detforge.models.roi_heads.sparse_roi_head import SparseRoIHead
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead

__all__ = [
    "BBoxHead",
    "BaseRoIHead",
    "CascadeRoIHead",
    "ConvFCBBoxHead",
    "DIIHead",
    "DoubleConvFCBBoxHead",
    "DoubleHeadRoIHead",
    "DynamicConv",
    "DynamicMaskHead",
    "DynamicRoIHead",
    "FCNMaskHead",
    "GenericRoIExtractor",
    "GridHead",
    "GridRoIHead",
    "PISARoIHead",
    "ResLayer",
    "Shared2FCBBoxHead",
    "Shared4Conv1FCBBoxHead",
    "SingleRoIExtractor",
    "SparseRoIHead",
    "StandardRoIHead",
]
