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
from detforge.models.roi_heads.dynamic_mask_head import DynamicMaskHead
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.models.roi_heads.roi_extractors import SingleRoIExtractor
from detforge.models.roi_heads.sparse_roi_head import SparseRoIHead
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead

__all__ = [
    "BBoxHead",
    "BaseRoIHead",
    "CascadeRoIHead",
    "ConvFCBBoxHead",
    "DIIHead",
    "DynamicConv",
    "DynamicMaskHead",
    "FCNMaskHead",
    "Shared2FCBBoxHead",
    "Shared4Conv1FCBBoxHead",
    "SingleRoIExtractor",
    "SparseRoIHead",
    "StandardRoIHead",
]
