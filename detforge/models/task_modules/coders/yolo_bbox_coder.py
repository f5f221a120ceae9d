"""``YOLOBBoxCoder``: YOLOv3's box encoding relative to an anchor and its stride (v2.28)."""

from __future__ import annotations

import torch

from detforge.registry import TASK_UTILS

__all__ = ["YOLOBBoxCoder"]


@TASK_UTILS.register_module()
class YOLOBBoxCoder:
    """Boxes as ``(tx, ty, tw, th)``: the centre's offset in the anchor's cell and log sizes.

    ``tx = (gx - ax) / stride + 0.5`` (clamped to ``[eps, 1 - eps]``, so a target centre
    in the anchor's cell lies in (0, 1)) and ``tw = log(gw / aw)`` (the ratio clamped at
    ``eps``); ``decode`` inverts it for predicted ``tx, ty`` already in (0, 1) (sigmoids).

    Args:
        eps: Clamp of the centre offsets and the size ratios.

    Example:
        >>> coder = YOLOBBoxCoder()
        >>> anchors = torch.tensor([[0., 0., 32., 32.]])
        >>> deltas = coder.encode(anchors, torch.tensor([[8., 8., 40., 24.]]), 32)
        >>> deltas
        tensor([[ 0.7500,  0.5000,  0.0000, -0.6931]])
        >>> coder.decode(anchors, deltas, 32)
        tensor([[ 8.,  8., 40., 24.]])
    """

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps

    def encode(
        self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor, stride: torch.Tensor | float
    ) -> torch.Tensor:
        """Targets ``[..., 4]`` of ``gt_bboxes`` w.r.t. ``bboxes`` (anchors) of ``stride``.

        Raises:
            ValueError: the two box sets differ in count or are not ``[..., 4]``.
        """
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 != gt_bboxes.size(-1):
            raise ValueError(
                f"YOLOBBoxCoder.encode: boxes {tuple(bboxes.shape)} and ground truths "
                f"{tuple(gt_bboxes.shape)} must both be [N, 4]"
            )
        gt_centers = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) * 0.5
        gt_sizes = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        centers = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5
        sizes = bboxes[..., 2:] - bboxes[..., :2]
        if isinstance(stride, torch.Tensor) and stride.dim() == bboxes.dim() - 1:
            stride = stride[..., None]
        offsets = ((gt_centers - centers) / stride + 0.5).clamp(self.eps, 1 - self.eps)
        log_sizes = torch.log((gt_sizes / sizes).clamp(min=self.eps))
        return torch.cat([offsets, log_sizes], dim=-1)

    def decode(
        self, bboxes: torch.Tensor, pred_bboxes: torch.Tensor, stride: torch.Tensor | float
    ) -> torch.Tensor:
        """Boxes ``[..., 4]`` from anchors and predictions (``stride`` broadcasts like v2's).

        Raises:
            ValueError: the inputs are not ``[..., 4]``.
        """
        if pred_bboxes.size(-1) != 4 or bboxes.size(-1) != 4:
            raise ValueError(
                f"YOLOBBoxCoder.decode: anchors {tuple(bboxes.shape)} and predictions "
                f"{tuple(pred_bboxes.shape)} must both end in 4"
            )
        centers = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5 + (pred_bboxes[..., :2] - 0.5) * stride
        half_sizes = (bboxes[..., 2:] - bboxes[..., :2]) * 0.5 * pred_bboxes[..., 2:].exp()
        return torch.cat([centers - half_sizes, centers + half_sizes], dim=-1)

    def __repr__(self) -> str:
        return f"YOLOBBoxCoder(eps={self.eps})"
