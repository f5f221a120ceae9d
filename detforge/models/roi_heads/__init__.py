"""Second-stage (RoI) heads, RoI extractors and box heads."""

from detforge.models.roi_heads.base_roi_head import BaseRoIHead
from detforge.models.roi_heads.bbox_heads import BBoxHead
from detforge.models.roi_heads.cascade_roi_head import CascadeRoIHead
from detforge.models.roi_heads.convfc_bbox_head import (
    ConvFCBBoxHead,
    Shared2FCBBoxHead,
    Shared4Conv1FCBBoxHead,
)
from detforge.models.roi_heads.mask_heads import FCNMaskHead
from detforge.models.roi_heads.roi_extractors import SingleRoIExtractor
from detforge.models.roi_heads.shared_heads import ResLayer
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead

__all__ = [
    "BBoxHead",
    "BaseRoIHead",
    "CascadeRoIHead",
    "ConvFCBBoxHead",
    "FCNMaskHead",
    "ResLayer",
    "Shared2FCBBoxHead",
    "Shared4Conv1FCBBoxHead",
    "SingleRoIExtractor",
    "StandardRoIHead",
]
