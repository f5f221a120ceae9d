"""Box coders, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.coders.delta_xywh_bbox_coder import (
    DeltaXYWHBBoxCoder,
    bbox2delta,
    delta2bbox,
)
from detforge.models.task_modules.coders.distance_point_bbox_coder import DistancePointBBoxCoder
from detforge.models.task_modules.coders.legacy_delta_xywh_bbox_coder import (
    LegacyDeltaXYWHBBoxCoder,
    legacy_bbox2delta,
    legacy_delta2bbox,
)
from detforge.models.task_modules.coders.tblr_bbox_coder import TBLRBBoxCoder

__all__ = [
    "DeltaXYWHBBoxCoder",
    "DistancePointBBoxCoder",
    "LegacyDeltaXYWHBBoxCoder",
    "TBLRBBoxCoder",
    "bbox2delta",
    "delta2bbox",
    "legacy_bbox2delta",
    "legacy_delta2bbox",
]
