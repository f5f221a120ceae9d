"""``BucketingBBoxCoder``: SABL's side-aware boundary localisation (Wang et al. 2020),
MMDetection v2.28 numerics.

A prior is first scaled about its centre by ``scale_factor``; each side's half of it is cut into
``ceil(num_buckets / 2)`` buckets of width ``w / num_buckets`` (``h`` for top/bottom), bucket
``i`` centred ``(0.5 + i)`` bucket widths in from that side. Encoding a ground truth gives, per
side: the offsets ``(bucket centre - side) / bucket width`` to every bucket (regression targets,
weight 1 on the nearest bucket and on the second nearest when its offset is below
``offset_upperbound``), and the nearest bucket as a one-hot classification target (weights 0 on
the other buckets within one bucket width when ``cls_ignore_neighbor``, else 1). Decoding takes
each side's best bucket (softmax over its buckets) and its offset, clipped to ``[0, W - 1]`` and
``[0, H - 1]``; the localisation confidence is the mean over the sides of the best bucket's
probability plus the second's when they are neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from detforge.registry import TASK_UTILS
from detforge.structures.bbox import bbox_rescale

__all__ = ["BucketingBBoxCoder", "bbox2bucket", "bucket2bbox", "generate_buckets"]


def generate_buckets(
    proposals: torch.Tensor, num_buckets: int, scale_factor: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """``(bucket_w [n], bucket_h [n], left, right, top, down)``: the bucket centres
    ``[n, ceil(num_buckets / 2)]`` of each side of the rescaled ``proposals`` ``[n, 4]``."""
    proposals = bbox_rescale(proposals, scale_factor)
    side_num = math.ceil(num_buckets / 2.0)
    px1, py1, px2, py2 = proposals.unbind(-1)
    bucket_w = (px2 - px1) / num_buckets
    bucket_h = (py2 - py1) / num_buckets
    steps = (0.5 + torch.arange(0, side_num).to(proposals).float())[None, :]
    return (
        bucket_w,
        bucket_h,
        px1[:, None] + steps * bucket_w[:, None],
        px2[:, None] - steps * bucket_w[:, None],
        py1[:, None] + steps * bucket_h[:, None],
        py2[:, None] - steps * bucket_h[:, None],
    )


def bbox2bucket(
    proposals: torch.Tensor,
    gt: torch.Tensor,
    num_buckets: int,
    scale_factor: float,
    offset_topk: int = 2,
    offset_upperbound: float = 1.0,
    cls_ignore_neighbor: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(offsets, offset_weights, bucket_labels, bucket_cls_weights)``, each
    ``[n, 4 * ceil(num_buckets / 2)]`` in the side order left, right, top, down (see the module
    docstring).

    Example:
        >>> offsets, weights, labels, cls_weights = bbox2bucket(
        ...     torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[1., 1., 9., 9.]]), 4, 1.0)
        >>> labels.tolist()
        [[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]
        >>> [round(x, 4) for x in offsets[0, :2].tolist()], weights[0, :2].tolist()
        ([0.1, 1.1], [1.0, 0.0])
    """
    if proposals.size() != gt.size():
        raise ValueError(
            f"bbox2bucket: {tuple(proposals.shape)} proposals for {tuple(gt.shape)} boxes"
        )
    proposals, gt = proposals.float(), gt.float()
    bucket_w, bucket_h, left, right, top, down = generate_buckets(
        proposals, num_buckets, scale_factor
    )
    sides = [
        (left - gt[:, 0:1]) / bucket_w[:, None],
        (right - gt[:, 2:3]) / bucket_w[:, None],
        (top - gt[:, 1:2]) / bucket_h[:, None],
        (down - gt[:, 3:4]) / bucket_h[:, None],
    ]
    weights, nearest = [], []
    for offsets in sides:
        topk, label = offsets.abs().topk(offset_topk, dim=1, largest=False, sorted=True)
        weight = offsets.new_zeros(offsets.size())
        rows = torch.arange(offsets.size(0), device=offsets.device)
        for k in range(offset_topk):
            weight[rows, label[:, k]] = 1.0 if k == 0 else (topk[:, k] < offset_upperbound).float()
        weights.append(weight)
        nearest.append(label[:, 0])
    side_num = math.ceil(num_buckets / 2.0)
    labels = torch.stack(nearest, dim=-1)
    bucket_labels = F.one_hot(labels.view(-1), side_num).view(labels.size(0), -1).float()
    close = torch.cat([(offsets.abs() < 1).float() for offsets in sides], dim=-1)
    if cls_ignore_neighbor:
        cls_weights = (~((close == 1) & (bucket_labels == 0))).float()
    else:
        cls_weights = torch.ones_like(close)
    return torch.cat(sides, dim=-1), torch.cat(weights, dim=-1), bucket_labels, cls_weights


def bucket2bbox(
    proposals: torch.Tensor,
    cls_preds: torch.Tensor,
    offset_preds: torch.Tensor,
    num_buckets: int,
    scale_factor: float = 1.0,
    max_shape: Sequence[int] | None = None,
    clip_border: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(boxes [n, 4], localisation confidence [n])`` from the bucket logits and offsets
    ``[n, 4 * ceil(num_buckets / 2)]`` (see the module docstring)."""
    side_num = math.ceil(num_buckets / 2.0)
    scores = F.softmax(cls_preds.view(-1, side_num), dim=1)
    score_topk, score_label = scores.topk(2, dim=1, largest=True, sorted=True)
    px1, py1, px2, py2 = bbox_rescale(proposals, scale_factor).unbind(-1)
    bucket_w = (px2 - px1) / num_buckets
    bucket_h = (py2 - py1) / num_buckets
    best = [score_label[i::4, 0] for i in range(4)]  # left, right, top, down
    offsets = offset_preds.view(-1, 4, side_num)
    rows = torch.arange(proposals.size(0), device=proposals.device)
    off = [offsets[:, i, :][rows, best[i]] for i in range(4)]
    x1 = px1 + (0.5 + best[0].float()) * bucket_w - off[0] * bucket_w
    x2 = px2 - (0.5 + best[1].float()) * bucket_w - off[1] * bucket_w
    y1 = py1 + (0.5 + best[2].float()) * bucket_h - off[2] * bucket_h
    y2 = py2 - (0.5 + best[3].float()) * bucket_h - off[3] * bucket_h
    if clip_border and max_shape is not None:
        x1 = x1.clamp(min=0, max=max_shape[1] - 1)
        y1 = y1.clamp(min=0, max=max_shape[0] - 1)
        x2 = x2.clamp(min=0, max=max_shape[1] - 1)
        y2 = y2.clamp(min=0, max=max_shape[0] - 1)
    boxes = torch.stack([x1, y1, x2, y2], dim=-1)
    neighbours = (score_label[:, 0] - score_label[:, 1]).abs() == 1
    confidence = score_topk[:, 0] + score_topk[:, 1] * neighbours.float()
    return boxes, confidence.view(-1, 4).mean(dim=1)


@TASK_UTILS.register_module()
class BucketingBBoxCoder:
    """SABL's bucketing box coder (see the module docstring).

    Args:
        num_buckets: Buckets across a rescaled prior (half of them per side).
        scale_factor: Scale of the priors before bucketing.
        offset_topk: Nearest buckets per side with regression targets.
        offset_upperbound: Largest offset of the non-nearest buckets' regression targets.
        cls_ignore_neighbor: Ignore the classification of buckets next to the nearest one.
        clip_border: Clip decoded boxes to ``max_shape`` when one is given.
    """

    def __init__(
        self,
        num_buckets: int,
        scale_factor: float,
        offset_topk: int = 2,
        offset_upperbound: float = 1.0,
        cls_ignore_neighbor: bool = True,
        clip_border: bool = True,
    ) -> None:
        self.num_buckets = num_buckets
        self.scale_factor = scale_factor
        self.offset_topk = offset_topk
        self.offset_upperbound = offset_upperbound
        self.cls_ignore_neighbor = cls_ignore_neighbor
        self.clip_border = clip_border

    def encode(
        self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """See :func:`bbox2bucket`."""
        return bbox2bucket(
            bboxes,
            gt_bboxes,
            self.num_buckets,
            self.scale_factor,
            self.offset_topk,
            self.offset_upperbound,
            self.cls_ignore_neighbor,
        )

    def decode(
        self,
        bboxes: torch.Tensor,
        pred_bboxes: Sequence[torch.Tensor],
        max_shape: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(boxes, confidence)`` from ``pred_bboxes = (bucket logits, offsets)`` (see
        :func:`bucket2bbox`).

        Raises:
            ValueError: ``pred_bboxes`` is not a pair with one row per prior.
        """
        if len(pred_bboxes) != 2:
            raise ValueError("BucketingBBoxCoder.decode: pred_bboxes must be (cls, offsets)")
        cls_preds, offset_preds = pred_bboxes
        if cls_preds.size(0) != bboxes.size(0) or offset_preds.size(0) != bboxes.size(0):
            raise ValueError(
                f"BucketingBBoxCoder.decode: {bboxes.size(0)} priors for "
                f"{cls_preds.size(0)}/{offset_preds.size(0)} predictions"
            )
        return bucket2bbox(
            bboxes,
            cls_preds,
            offset_preds,
            self.num_buckets,
            self.scale_factor,
            max_shape,
            self.clip_border,
        )
