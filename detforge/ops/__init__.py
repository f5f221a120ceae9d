"""Tensor operators with mmcv 1.x semantics, built on ``torchvision.ops``.

``nms``, ``soft_nms``, ``batched_nms`` and ``multiclass_nms`` follow ``mmcv.ops`` and
MMDetection v2's ``bbox_nms`` exactly (argument names, return values, ordering);
``RoIAlign``, ``RoIPool``, ``DeformRoIPoolPack``, ``ModulatedDeformRoIPoolPack`` and
PointRend's ``SimpleRoIAlign`` are the mmcv layers that v2 configs name in ``roi_layer``;
``point_sample`` and its coordinate helpers are mmcv's.
"""

from detforge.ops.deform_roi_pool import (
    DeformRoIPool,
    DeformRoIPoolPack,
    ModulatedDeformRoIPoolPack,
    deform_roi_pool,
)
from detforge.ops.nms import batched_nms, multiclass_nms, nms, soft_nms
from detforge.ops.nms_match import nms_match
from detforge.ops.point_sample import (
    SimpleRoIAlign,
    generate_grid,
    point_sample,
    rel_roi_point_to_rel_img_point,
)
from detforge.ops.roi_align import RoIAlign, RoIPool, roi_align, roi_pool

__all__ = [
    "DeformRoIPool",
    "DeformRoIPoolPack",
    "ModulatedDeformRoIPoolPack",
    "RoIAlign",
    "RoIPool",
    "SimpleRoIAlign",
    "batched_nms",
    "deform_roi_pool",
    "generate_grid",
    "multiclass_nms",
    "nms",
    "nms_match",
    "point_sample",
    "rel_roi_point_to_rel_img_point",
    "roi_align",
    "roi_pool",
    "soft_nms",
]
