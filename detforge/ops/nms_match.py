"""``nms_match``: group boxes by greedy NMS instead of discarding the suppressed ones
(``mmcv.ops.nms_match``, used by PISA's ``ScoreHLRSampler``).

Boxes are visited in descending score order; each box not yet taken heads a new group and
takes every later untaken box whose IoU with it is ``>= iou_threshold`` (areas without the
legacy ``+ 1``, IoU ``inter / (area_i + area_j - inter)`` in the boxes' dtype, as mmcv's CPU
kernel). A group lists its head first, then its members in score order.
"""

from __future__ import annotations

import torch

__all__ = ["nms_match"]


def nms_match(dets: torch.Tensor, iou_threshold: float) -> list[torch.Tensor]:
    """Groups of overlapping boxes.

    Args:
        dets: ``Tensor[N, 5]`` boxes ``(x1, y1, x2, y2, score)``.
        iou_threshold: A box joins a group when its IoU with the group's head reaches this.

    Returns:
        One ``LongTensor`` of indices into ``dets`` per group, groups in the order of their
        heads' scores.

    Example:
        >>> dets = torch.tensor([[0., 0., 10., 10., .9], [50., 50., 60., 60., .8],
        ...                      [1., 1., 10., 10., .7]])
        >>> [g.tolist() for g in nms_match(dets, 0.5)]
        [[0, 2], [1]]
    """
    if dets.ndim != 2 or dets.shape[1] != 5:
        raise ValueError(f"nms_match: dets must be [N, 5], got shape {tuple(dets.shape)}")
    boxes = dets[:, :4].detach()
    order = dets[:, 4].detach().sort(descending=True).indices
    boxes = boxes[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    ious = inter / (areas[:, None] + areas[None, :] - inter)
    taken = torch.zeros(len(boxes), dtype=torch.bool)
    later = torch.ones(len(boxes), len(boxes), dtype=torch.bool).triu(1)
    groups = []
    for i in range(len(boxes)):
        if taken[i]:
            continue
        members = (ious[i] >= iou_threshold) & later[i] & ~taken
        taken |= members
        rest = members.nonzero().flatten()
        groups.append(order[torch.cat([rest.new_tensor([i]), rest])].to(dets.device))
    return groups
