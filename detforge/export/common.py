"""Traceable building blocks of the export graphs.

Everything here runs the same in eager mode and under ``torch.jit.trace`` (which the ONNX
exporter uses): no Python branch depends on tensor values, and sizes read from tensors stay
symbolic, so a graph exported with dynamic height and width stays correct at other sizes.
NMS is ``torchvision.ops.nms``, which exports to ONNX ``NonMaxSuppression``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torchvision

from detforge.errors import ConfigError, ConfigKeyError
from detforge.ops.nms import nms, nms_op_and_args

__all__ = [
    "NmsSettings",
    "anchors_of_level",
    "batched_nms_graph",
    "clip_to_image",
    "image_size",
    "nms_settings",
    "points_of_level",
    "top_scores",
]


def image_size(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Height and width of ``img`` ``[B, C, H, W]`` as 0-dim tensors (symbolic when traced).

    Example:
        >>> [int(v) for v in image_size(torch.zeros(1, 3, 20, 30))]
        [20, 30]
    """
    shape = torch._shape_as_tensor(img)
    return shape[-2], shape[-1]


def clip_to_image(boxes: torch.Tensor, height: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Clamp ``boxes`` ``[..., 4]`` to ``x in [0, width]``, ``y in [0, height]``.

    The same arithmetic as the box coders' ``max_shape`` clipping, with bounds that may be
    traced tensors.

    Example:
        >>> h, w = torch.tensor(10), torch.tensor(8)
        >>> clip_to_image(torch.tensor([[-1., 2., 9., 12.]]), h, w).tolist()
        [[0.0, 2.0, 8.0, 10.0]]
    """
    w = width.to(boxes.dtype)
    h = height.to(boxes.dtype)
    bounds = torch.stack([w, h, w, h])
    return torch.min(boxes.clamp(min=0), bounds)


def _at_most(size: Any, limit: int) -> Any:
    """``min(size, limit)`` for an int or a traced 0-dim tensor."""
    if isinstance(size, torch.Tensor):
        return torch.clamp(size, max=limit)
    return min(int(size), limit)


def top_scores(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest entries of the 1-D ``scores`` (all of them, sorted, when ``k <= 0``
    or fewer exist), with their indices, in descending order.

    Example:
        >>> values, inds = top_scores(torch.tensor([0.1, 0.7, 0.3]), 2)
        >>> values.tolist(), inds.tolist()
        ([0.699999988079071, 0.30000001192092896], [1, 2])
    """
    if k <= 0:
        return scores.sort(descending=True)
    num = _at_most(scores.shape[0], k)
    values, inds = scores.topk(num)
    return values, inds


def _grid(
    feat: torch.Tensor, offset: float, stride_w: float, stride_h: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major cell coordinates ``(xx, yy)`` ``[H * W]`` of ``feat``'s grid, as the prior
    generators compute them (``(index + offset) * stride``), with ``H, W`` symbolic."""
    shape = torch._shape_as_tensor(feat)
    device = feat.device
    cols = torch.arange(0, shape[-1], device=device)  # type: ignore[call-overload]
    rows = torch.arange(0, shape[-2], device=device)  # type: ignore[call-overload]
    # exact for float32 (the export dtype): integer positions convert without rounding
    shift_x = (cols.to(feat.dtype) + offset) * stride_w
    shift_y = (rows.to(feat.dtype) + offset) * stride_h
    xx = (shift_x[None, :] + shift_y[:, None] * 0).reshape(-1)
    yy = (shift_y[:, None] + shift_x[None, :] * 0).reshape(-1)
    return xx, yy


def anchors_of_level(generator: Any, level: int, feat: torch.Tensor) -> torch.Tensor:
    """``AnchorGenerator.single_level_grid_priors`` for the feature map ``feat`` ``[B, C, H, W]``
    with symbolic ``H, W``: ``Tensor[H * W * A, 4]``, cell by cell, row-major."""
    base = generator.base_anchors[level].to(device=feat.device, dtype=feat.dtype)
    stride_w, stride_h = generator.strides[level]
    xx, yy = _grid(feat, 0, stride_w, stride_h)
    shifts = torch.stack([xx, yy, xx, yy], dim=-1)
    return (base[None, :, :] + shifts[:, None, :]).reshape(-1, 4)


def points_of_level(generator: Any, level: int, feat: torch.Tensor) -> torch.Tensor:
    """``MlvlPointGenerator.single_level_grid_priors`` (points ``Tensor[H * W, 2]``) for
    ``feat`` with symbolic ``H, W``."""
    stride_w, stride_h = generator.strides[level]
    xx, yy = _grid(feat, generator.offset, stride_w, stride_h)
    return torch.stack([xx, yy], dim=-1)


class NmsSettings:
    """What :func:`batched_nms_graph` needs from a v2 ``nms`` config.

    Args:
        iou_threshold: Boxes with IoU strictly above this are suppressed.
        class_agnostic: One NMS over all categories.
        offset: 1 for mmcv's legacy ``x2 - x1 + 1`` box size.
        max_num: Keep at most this many boxes after NMS (all when ``<= 0``).
    """

    def __init__(
        self,
        iou_threshold: float,
        class_agnostic: bool = False,
        offset: int = 0,
        max_num: int = -1,
    ) -> None:
        self.iou_threshold = float(iou_threshold)
        self.class_agnostic = class_agnostic
        self.offset = offset
        self.max_num = max_num

    def __repr__(self) -> str:
        return (
            f"NmsSettings(iou_threshold={self.iou_threshold}, class_agnostic="
            f"{self.class_agnostic}, offset={self.offset}, max_num={self.max_num})"
        )


def nms_settings(nms_cfg: Mapping[str, Any], where: str) -> NmsSettings:
    """Read a v2 ``nms=dict(type='nms', iou_threshold=...)`` config (parsed by
    :func:`detforge.ops.nms.nms_op_and_args`, as :func:`detforge.ops.batched_nms` does); what
    cannot be put in a graph (soft-NMS, a score threshold inside NMS) is a clear error naming
    ``where``.

    Example:
        >>> nms_settings(dict(type='nms', iou_threshold=0.5), 'test_cfg.nms')
        NmsSettings(iou_threshold=0.5, class_agnostic=False, offset=0, max_num=-1)
    """
    try:
        op, args, class_agnostic, _split_thr, max_num = nms_op_and_args(nms_cfg, path=where)
    except ConfigError as exc:  # unknown type or key
        raise ConfigKeyError(str(exc)) from None
    # split_thr is ignored: per-class NMS above split_thr gives the same boxes
    if op is not nms:
        raise NotImplementedError(
            f"{where}: type={nms_cfg.get('type')!r} cannot be exported; only type='nms' maps "
            "to ONNX NonMaxSuppression"
        )
    if "iou_threshold" not in args:
        raise KeyError(f"{where}: no 'iou_threshold'")
    if float(args.get("score_threshold", 0) or 0) > 0:
        raise NotImplementedError(f"{where}: score_threshold inside NMS cannot be exported")
    return NmsSettings(
        iou_threshold=args["iou_threshold"],
        class_agnostic=class_agnostic,
        offset=int(args.get("offset", 0)),
        max_num=int(args.get("max_num", max_num)),
    )


def batched_nms_graph(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    idxs: torch.Tensor,
    settings: NmsSettings,
    max_per_img: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`detforge.ops.batched_nms` (coordinate-offset trick) as a traceable graph.

    Returns:
        ``(dets [K, 5], keep [K])`` in descending score order, at most ``max_per_img``.

    Example:
        >>> boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [0., 0., 10., 10.]])
        >>> dets, keep = batched_nms_graph(boxes, torch.tensor([0.9, 0.8, 0.7]),
        ...                                torch.tensor([0, 0, 1]), NmsSettings(0.5))
        >>> keep.tolist()
        [0, 2]
    """
    if settings.class_agnostic:
        boxes_for_nms = boxes
    else:
        # boxes.max() that also works on zero boxes (clipped boxes are never negative)
        max_coordinate = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
        offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
        boxes_for_nms = boxes + offsets[:, None]
    if settings.offset:
        boxes_for_nms = torch.cat(
            [boxes_for_nms[:, :2], boxes_for_nms[:, 2:] + settings.offset], dim=1
        )
    keep = torchvision.ops.nms(boxes_for_nms, scores, settings.iou_threshold)
    for limit in (settings.max_num, max_per_img):
        if limit > 0:
            keep = keep[:limit]
    dets = torch.cat([boxes[keep], scores[keep][:, None]], dim=-1)
    return dets, keep
