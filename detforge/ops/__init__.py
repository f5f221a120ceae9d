"""Tensor operators with mmcv 1.x semantics, built on ``torchvision.ops``.

``nms``, ``soft_nms``, ``batched_nms`` and ``multiclass_nms`` follow ``mmcv.ops`` and
MMDetection v2's ``bbox_nms`` exactly (argument names, return values, ordering);
``RoIAlign``, ``RoIPool``, ``DeformRoIPoolPack`` and ``ModulatedDeformRoIPoolPack`` are the
mmcv layers that v2 configs name in ``roi_layer``.
"""

from detforge.ops.deform_roi_pool import (
    DeformRoIPool,
    DeformRoIPoolPack,
    ModulatedDeformRoIPoolPack,
    deform_roi_pool,
)
from detforge.ops.nms import batched_nms, multiclass_nms, nms, soft_nms
from detforge.ops.roi_align import RoIAlign, RoIPool, roi_align, roi_pool

__all__ = [
    "DeformRoIPool",
    "DeformRoIPoolPack",
    "ModulatedDeformRoIPoolPack",
    "RoIAlign",
    "RoIPool",
    "batched_nms",
    "deform_roi_pool",
    "multiclass_nms",
    "nms",
    "roi_align",
    "roi_pool",
    "soft_nms",
]
