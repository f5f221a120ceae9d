"""Tensor operators with mmcv 1.x semantics, built on ``torchvision.ops``.

``nms``, ``soft_nms``, ``batched_nms`` and ``multiclass_nms`` follow ``mmcv.ops`` and
MMDetection v2's ``bbox_nms`` exactly (argument names, return values, ordering);
``RoIAlign``, ``RoIPool`` and PointRend's ``SimpleRoIAlign`` are the mmcv layers that v2
configs name in ``roi_layer``; ``point_sample`` and its coordinate helpers are mmcv's.
"""

from detforge.ops.nms import batched_nms, multiclass_nms, nms, soft_nms
from detforge.ops.point_sample import (
    SimpleRoIAlign,
    generate_grid,
    point_sample,
    rel_roi_point_to_rel_img_point,
)
from detforge.ops.roi_align import RoIAlign, RoIPool, roi_align, roi_pool

__all__ = [
    "RoIAlign",
    "RoIPool",
    "SimpleRoIAlign",
    "batched_nms",
    "generate_grid",
    "multiclass_nms",
    "nms",
    "point_sample",
    "rel_roi_point_to_rel_img_point",
    "roi_align",
    "roi_pool",
    "soft_nms",
]
