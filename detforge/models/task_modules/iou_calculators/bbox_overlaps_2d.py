"""``BboxOverlaps2D``: the IoU calculator assigners use, with v2's fp16 memory-saving mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from detforge.errors import InvalidArgumentError
from detforge.registry import TASK_UTILS, build_module
from detforge.structures.bbox import bbox_overlaps

__all__ = ["BboxOverlaps2D", "build_iou_calculator", "cast_tensor_type"]


def cast_tensor_type(x: torch.Tensor, scale: float = 1.0, dtype: str | None = None) -> torch.Tensor:
    """``x / scale`` in half precision when ``dtype == 'fp16'``, else ``x`` unchanged.

    Example:
        >>> cast_tensor_type(torch.tensor([512.]), scale=2., dtype='fp16')
        tensor([256.], dtype=torch.float16)
    """
    if dtype == "fp16":
        return (x / scale).half()  # the scale keeps large coordinates from overflowing fp16
    return x


@TASK_UTILS.register_module()
class BboxOverlaps2D:
    """2D IoU / IoF / GIoU between two sets of boxes (``mmdet.core.bbox.BboxOverlaps2D``).

    Inputs may carry a score column (``[..., 5]``), which is ignored.

    Args:
        scale: With ``dtype='fp16'``, boxes are divided by this before the cast.
        dtype: ``'fp16'`` computes in half precision to save memory (CPU results come back
            as float32); ``None`` computes in the input dtype.

    Example:
        >>> iou = BboxOverlaps2D()
        >>> iou(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[0., 0., 10., 20., 0.9]]))
        tensor([[0.5000]])
    """

    def __init__(self, scale: float = 1.0, dtype: str | None = None) -> None:
        if dtype not in (None, "fp16"):
            raise InvalidArgumentError(
                f"BboxOverlaps2D: dtype must be None or 'fp16', got {dtype!r}"
            )
        self.scale = scale
        self.dtype = dtype

    def __call__(
        self,
        bboxes1: torch.Tensor,
        bboxes2: torch.Tensor,
        mode: str = "iou",
        is_aligned: bool = False,
    ) -> torch.Tensor:
        """Overlaps ``Tensor[..., M, N]`` (``[..., M]`` when aligned) of the two box sets.

        Args:
            bboxes1: ``Tensor[..., M, 4]`` or ``[..., M, 5]`` (or empty ``[..., 0, 0]``).
            bboxes2: ``Tensor[..., N, 4]`` or ``[..., N, 5]``.
            mode: ``'iou'``, ``'iof'`` (over ``bboxes1``'s area) or ``'giou'``.
            is_aligned: Pair row ``i`` with row ``i`` only.
        """
        for name, boxes in (("bboxes1", bboxes1), ("bboxes2", bboxes2)):
            if boxes.size(-1) not in (0, 4, 5):
                raise InvalidArgumentError(
                    f"BboxOverlaps2D: {name} must be [..., 4] or [..., 5], "
                    f"got shape {tuple(boxes.shape)}"
                )
        if bboxes1.size(-1) == 5:
            bboxes1 = bboxes1[..., :4]
        if bboxes2.size(-1) == 5:
            bboxes2 = bboxes2[..., :4]
        if self.dtype == "fp16":
            bboxes1 = cast_tensor_type(bboxes1, self.scale, self.dtype)
            bboxes2 = cast_tensor_type(bboxes2, self.scale, self.dtype)
            overlaps = bbox_overlaps(bboxes1, bboxes2, mode, is_aligned)
            if not overlaps.is_cuda and overlaps.dtype == torch.float16:
                overlaps = overlaps.float()
            return overlaps
        return bbox_overlaps(bboxes1, bboxes2, mode, is_aligned)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, dtype={self.dtype})"


def build_iou_calculator(cfg: Mapping[str, Any] | Any = None) -> Any:
    """An assigner's IoU calculator: built from a config (``TASK_UTILS``), passed through when
    already built, ``BboxOverlaps2D()`` when ``None``."""
    if cfg is None:
        cfg = dict(type="BboxOverlaps2D")
    return build_module(cfg, TASK_UTILS) if isinstance(cfg, Mapping) else cfg
