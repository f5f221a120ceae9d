"""The ``mmdet.core`` names that v2 plug-ins import, where detforge has them cheaply.

A v2 plug-in ``from mmdet.core import bbox2roi, multi_apply, build_assigner`` ports as
``from detforge.core import ...``; each name is detforge's own implementation (the table in
``docs/migrating-from-mmdet-v2.md`` gives the home of each). ``auto_fp16`` and ``force_fp32``
are no-op decorators: detforge trains mixed precision with ``torch.autocast`` (``fp16=dict(...)``
in the config), not by casting arguments per method.

Example:
    >>> from detforge.core import build_bbox_coder
    >>> type(build_bbox_coder(dict(type='DeltaXYWHBBoxCoder'))).__name__
    'DeltaXYWHBBoxCoder'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from detforge.models.task_modules.assigners import AssignResult
from detforge.models.task_modules.samplers import SamplingResult
from detforge.models.utils import multi_apply
from detforge.registry import TASK_UTILS, build_module
from detforge.structures.bbox import (
    bbox2distance,
    bbox2result,
    bbox2roi,
    bbox_flip,
    bbox_mapping,
    bbox_mapping_back,
    bbox_overlaps,
    distance2bbox,
    roi2bbox,
)
from detforge.structures.masks import BitmapMasks, PolygonMasks, encode_mask_results, mask2ndarray

__all__ = [
    "AssignResult",
    "BitmapMasks",
    "PolygonMasks",
    "SamplingResult",
    "auto_fp16",
    "bbox2distance",
    "bbox2result",
    "bbox2roi",
    "bbox_flip",
    "bbox_mapping",
    "bbox_mapping_back",
    "bbox_overlaps",
    "build_anchor_generator",
    "build_assigner",
    "build_bbox_coder",
    "build_prior_generator",
    "build_sampler",
    "distance2bbox",
    "encode_mask_results",
    "force_fp32",
    "mask2ndarray",
    "multi_apply",
    "roi2bbox",
]

F = TypeVar("F", bound=Callable[..., Any])


def _build_task_util(cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None) -> Any:
    return build_module(cfg, TASK_UTILS, default_args)


def build_assigner(cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None = None) -> Any:
    """v2's ``build_assigner``: a box assigner from ``dict(type=..., ...)``."""
    return _build_task_util(cfg, default_args)


def build_sampler(cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None = None) -> Any:
    """v2's ``build_sampler``: a box sampler from ``dict(type=..., ...)``."""
    return _build_task_util(cfg, default_args)


def build_bbox_coder(cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None = None) -> Any:
    """v2's ``build_bbox_coder``: a box coder from ``dict(type=..., ...)``."""
    return _build_task_util(cfg, default_args)


def build_prior_generator(
    cfg: Mapping[str, Any], default_args: Mapping[str, Any] | None = None
) -> Any:
    """v2's ``build_prior_generator`` (and ``build_anchor_generator``): anchors or points."""
    return _build_task_util(cfg, default_args)


build_anchor_generator = build_prior_generator


def _no_op_decorator(name: str) -> Callable[..., Any]:
    def decorator(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]  # used bare: @auto_fp16

        def wrap(func: F) -> F:  # used with arguments: @auto_fp16(apply_to=('img',))
            return func

        return wrap

    decorator.__name__ = name
    decorator.__doc__ = (
        f"v2's ``{name}``, a no-op here: the method runs unchanged (mixed precision comes "
        "from ``torch.autocast`` around the whole step)."
    )
    return decorator


auto_fp16 = _no_op_decorator("auto_fp16")
force_fp32 = _no_op_decorator("force_fp32")
