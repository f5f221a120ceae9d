"""``LegacyDeltaXYWHBBoxCoder``: MMDetection v1.x box deltas (sizes count ``+ 1`` pixel).

Used by v2's ``configs/legacy_1.x`` to run models converted from v1.x. It differs from
:class:`~detforge.models.task_modules.coders.DeltaXYWHBBoxCoder` in three places, all as in
v2.28's ``legacy_delta_xywh_bbox_coder.py``:

- widths and heights are ``x2 - x1 + 1`` and ``y2 - y1 + 1`` in both directions (the decoded
  corners are still ``centre ± size / 2``, so a decoded box is one pixel wider than its
  encoded size suggests — v1's convention, kept);
- decoded boxes are clipped to ``[0, w - 1]`` and ``[0, h - 1]`` (not ``w`` and ``h``);
- there is no ``clip_border``/``add_ctr_clamp`` option and no batched ``[B, N, 4]`` decoding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detforge.registry import TASK_UTILS

__all__ = ["LegacyDeltaXYWHBBoxCoder", "legacy_bbox2delta", "legacy_delta2bbox"]


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(cx, cy, w + 1, h + 1)`` of ``Tensor[..., 4]`` boxes (v1's pixel-inclusive sizes)."""
    cx = (boxes[..., 0] + boxes[..., 2]) * 0.5
    cy = (boxes[..., 1] + boxes[..., 3]) * 0.5
    w = boxes[..., 2] - boxes[..., 0] + 1.0
    h = boxes[..., 3] - boxes[..., 1] + 1.0
    return cx, cy, w, h


def legacy_bbox2delta(
    proposals: torch.Tensor,
    gt: torch.Tensor,
    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> torch.Tensor:
    """Deltas ``Tensor[..., 4]`` from ``proposals`` to ``gt`` with v1's ``+ 1`` sizes.

    Example:
        >>> legacy_bbox2delta(torch.tensor([[0., 0., 9., 9.]]), torch.tensor([[5., 0., 14., 19.]]))
        tensor([[0.5000, 0.5000, 0.0000, 0.6931]])
    """
    if proposals.size() != gt.size():
        raise ValueError(
            f"legacy_bbox2delta: proposals {tuple(proposals.shape)} and gt {tuple(gt.shape)} differ"
        )
    px, py, pw, ph = _centre_size(proposals.float())
    gx, gy, gw, gh = _centre_size(gt.float())
    deltas = torch.stack(
        [(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1
    )
    return deltas.sub_(deltas.new_tensor(means).unsqueeze(0)).div_(
        deltas.new_tensor(stds).unsqueeze(0)
    )


def legacy_delta2bbox(
    rois: torch.Tensor,
    deltas: torch.Tensor,
    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    max_shape: Sequence[int] | torch.Tensor | None = None,
    wh_ratio_clip: float = 16 / 1000,
) -> torch.Tensor:
    """Apply ``deltas [N, 4 * C]`` to ``rois [N, 4]`` in v1's manner.

    ``dw``/``dh`` are clamped to ``±|log(wh_ratio_clip)|``; with ``max_shape = (h, w, ...)``
    the corners are clipped to ``[0, w - 1]`` x ``[0, h - 1]``.

    Example:
        >>> rois = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.], [0., 0., 1., 1.],
        ...                      [5., 5., 5., 5.]])
        >>> deltas = torch.tensor([[0., 0., 0., 0.], [1., 1., 1., 1.], [0., 0., 2., -1.],
        ...                        [0.7, -1.9, -0.5, 0.3]])
        >>> legacy_delta2bbox(rois, deltas, max_shape=(32, 32))
        tensor([[0.0000, 0.0000, 1.5000, 1.5000],
                [0.0000, 0.0000, 5.2183, 5.2183],
                [0.0000, 0.1321, 7.8891, 0.8679],
                [5.3967, 2.4251, 6.0033, 3.7749]])
    """
    if deltas.ndim != 2 or rois.ndim != 2 or deltas.size(0) != rois.size(0):
        raise ValueError(
            f"legacy_delta2bbox: rois {tuple(rois.shape)} and deltas {tuple(deltas.shape)} "
            "must be [N, 4] and [N, 4 * C] (no batched decoding)"
        )
    repeats = deltas.size(1) // 4
    denorm = deltas * deltas.new_tensor(stds).repeat(1, repeats) + deltas.new_tensor(means).repeat(
        1, repeats
    )
    dx, dy = denorm[:, 0::4], denorm[:, 1::4]
    max_ratio = float(np.abs(np.log(wh_ratio_clip)))
    dw = denorm[:, 2::4].clamp(min=-max_ratio, max=max_ratio)
    dh = denorm[:, 3::4].clamp(min=-max_ratio, max=max_ratio)
    px, py, pw, ph = (t.unsqueeze(1).expand_as(dx) for t in _centre_size(rois))
    gw, gh = pw * dw.exp(), ph * dh.exp()
    gx, gy = px + pw * dx, py + ph * dy
    x1, y1, x2, y2 = gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5
    if max_shape is not None:
        max_x, max_y = float(max_shape[1]) - 1, float(max_shape[0]) - 1
        x1, x2 = x1.clamp(min=0, max=max_x), x2.clamp(min=0, max=max_x)
        y1, y2 = y1.clamp(min=0, max=max_y), y2.clamp(min=0, max=max_y)
    return torch.stack([x1, y1, x2, y2], dim=-1).view_as(deltas)


@TASK_UTILS.register_module()
class LegacyDeltaXYWHBBoxCoder:
    """Box coder of MMDetection v1.x (see the module docstring for the differences).

    Args:
        target_means: Means of the deltas (subtracted by ``encode``).
        target_stds: Standard deviations of the deltas (divide in ``encode``).

    Example:
        >>> coder = LegacyDeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))
        >>> anchors = torch.tensor([[0., 0., 10., 10.]])
        >>> gt = torch.tensor([[1., 2., 12., 9.]])
        >>> coder.decode(anchors, coder.encode(anchors, gt))  # v1: half a pixel wider per side
        tensor([[ 0.5000,  1.5000, 12.5000,  9.5000]])
    """

    def __init__(
        self,
        target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    ) -> None:
        self.means = target_means
        self.stds = target_stds

    def encode(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """Deltas ``Tensor[N, 4]`` that transform ``bboxes`` ``[N, 4]`` into ``gt_bboxes``."""
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise ValueError(
                f"LegacyDeltaXYWHBBoxCoder.encode: bboxes {tuple(bboxes.shape)} and gt_bboxes "
                f"{tuple(gt_bboxes.shape)} must both be [N, 4]"
            )
        return legacy_bbox2delta(bboxes, gt_bboxes, self.means, self.stds)

    def decode(
        self,
        bboxes: torch.Tensor,
        pred_bboxes: torch.Tensor,
        max_shape: Sequence[int] | torch.Tensor | None = None,
        wh_ratio_clip: float = 16 / 1000,
    ) -> torch.Tensor:
        """Apply ``pred_bboxes [N, 4 * C]`` to ``bboxes [N, 4]``, clipped to ``max_shape``."""
        return legacy_delta2bbox(
            bboxes, pred_bboxes, self.means, self.stds, max_shape, wh_ratio_clip
        )
