"""``TBLRBBoxCoder``: boxes as the distances from a prior's centre to their top, bottom, left and
right sides, divided by the prior's height (top, bottom) or width (left, right) and by
``normalizer`` (FSAF; MMDetection v2.28)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from detforge.models.task_modules.coders.distance_point_bbox_coder import (
    MaxShape,
    clip_distance_boxes,
)
from detforge.registry import TASK_UTILS

__all__ = ["TBLRBBoxCoder", "bboxes2tblr", "tblr2bboxes"]

Normalizer = float | Sequence[float]


def _normalizer(normalizer: Normalizer, like: torch.Tensor) -> float | torch.Tensor:
    if isinstance(normalizer, int | float):
        return float(normalizer)
    value = like.new_tensor(list(normalizer))
    if value.numel() != 4:
        raise ValueError(f"TBLRBBoxCoder: normalizer must be a number or 4 numbers: {normalizer!r}")
    return value


def bboxes2tblr(
    priors: torch.Tensor, gts: torch.Tensor, normalizer: Normalizer = 4.0
) -> torch.Tensor:
    """``Tensor[N, 4]`` normalised ``(top, bottom, left, right)`` of ``gts`` from the centres of
    ``priors`` (both ``[N, 4]``).

    Example:
        >>> bboxes2tblr(torch.tensor([[0., 0., 10., 20.]]), torch.tensor([[0., 0., 20., 20.]]))
        tensor([[0.1250, 0.1250, 0.1250, 0.3750]])
    """
    if priors.size(0) != gts.size(0):
        raise ValueError(f"bboxes2tblr: {priors.size(0)} priors for {gts.size(0)} boxes")
    centers = (priors[:, 0:2] + priors[:, 2:4]) / 2
    xmin, ymin, xmax, ymax = gts.split(1, dim=1)
    top = centers[:, 1].unsqueeze(1) - ymin
    bottom = ymax - centers[:, 1].unsqueeze(1)
    left = centers[:, 0].unsqueeze(1) - xmin
    right = xmax - centers[:, 0].unsqueeze(1)
    loc = torch.cat((top, bottom, left, right), dim=1)
    w, h = torch.split(priors[:, 2:4] - priors[:, 0:2], 1, dim=1)
    loc[:, :2] /= h
    loc[:, 2:] /= w
    return loc / _normalizer(normalizer, priors)


def tblr2bboxes(
    priors: torch.Tensor,
    tblr: torch.Tensor,
    normalizer: Normalizer = 4.0,
    max_shape: MaxShape | None = None,
    clip_border: bool = True,
) -> torch.Tensor:
    """Boxes ``x1, y1, x2, y2`` from priors ``[..., 4]`` and their normalised ``tblr``, clipped
    to ``max_shape`` (``(H, W)``, or one per image for ``[B, N, 4]``) with ``clip_border``.

    Example:
        >>> priors = torch.tensor([[0., 0., 10., 20.]])
        >>> tblr2bboxes(priors, torch.tensor([[.125, .125, .125, .375]]))
        tensor([[ 0.,  0., 20., 20.]])
    """
    loc = tblr * _normalizer(normalizer, priors)
    centers = (priors[..., 0:2] + priors[..., 2:4]) / 2
    w, h = torch.split(priors[..., 2:4] - priors[..., 0:2], 1, dim=-1)
    loc = torch.cat([h * loc[..., :2], w * loc[..., 2:]], dim=-1)
    top, bottom, left, right = loc.split((1, 1, 1, 1), dim=-1)
    boxes = torch.cat(
        (
            centers[..., 0].unsqueeze(-1) - left,
            centers[..., 1].unsqueeze(-1) - top,
            centers[..., 0].unsqueeze(-1) + right,
            centers[..., 1].unsqueeze(-1) + bottom,
        ),
        dim=-1,
    )
    if clip_border and max_shape is not None:
        boxes = clip_distance_boxes(boxes, max_shape)
    return boxes


@TASK_UTILS.register_module()
class TBLRBBoxCoder:
    """Encode boxes as normalised top/bottom/left/right distances from prior centres (v2).

    Args:
        normalizer: Divisor of the encoded distances (a number or one per side).
        clip_border: Clip decoded boxes to ``max_shape`` when one is given.
    """

    def __init__(self, normalizer: Normalizer = 4.0, clip_border: bool = True) -> None:
        self.normalizer = normalizer
        self.clip_border = clip_border

    def encode(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """``Tensor[N, 4]`` encoding of ``gt_bboxes`` relative to the priors ``bboxes``."""
        return bboxes2tblr(bboxes, gt_bboxes, self.normalizer)

    def decode(
        self, bboxes: torch.Tensor, pred_bboxes: torch.Tensor, max_shape: MaxShape | None = None
    ) -> torch.Tensor:
        """Boxes from the priors ``bboxes`` and the predicted encodings (see
        :func:`tblr2bboxes`)."""
        return tblr2bboxes(bboxes, pred_bboxes, self.normalizer, max_shape, self.clip_border)
