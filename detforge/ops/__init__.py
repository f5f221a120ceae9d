"""Tensor operators with mmcv 1.x semantics, built on ``torchvision.ops``.

``nms``, ``soft_nms``, ``batched_nms`` and ``multiclass_nms`` follow ``mmcv.ops`` and
MMDetection v2's ``bbox_nms`` exactly (argument names, return values, ordering);
``RoIAlign`` and ``RoIPool`` are the mmcv layers that v2 configs name in ``roi_layer``.
"""

from detforge.ops.nms import batched_nms, multiclass_nms, nms, soft_nms
from detforge.ops.nms_match import nms_match
from detforge.ops.roi_align import RoIAlign, RoIPool, roi_align, roi_pool

__all__ = [
    "RoIAlign",
    "RoIPool",
    "batched_nms",
    "multiclass_nms",
    "nms",
    "nms_match",
    "roi_align",
    "roi_pool",
    "soft_nms",
]
