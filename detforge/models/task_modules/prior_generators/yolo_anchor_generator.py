"""``YOLOAnchorGenerator``: YOLO's anchors of given (w, h) per level (v2.28), and the
"responsible" cells that contain a ground-truth centre."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.modules.utils import _pair

from detforge.models.task_modules.prior_generators.anchor_generator import (
    AnchorGenerator,
    Device,
)
from detforge.registry import TASK_UTILS

__all__ = ["YOLOAnchorGenerator"]


@TASK_UTILS.register_module()
class YOLOAnchorGenerator(AnchorGenerator):
    """Per level, one anchor per ``(w, h)`` of ``base_sizes[l]``, centred on each cell's middle.

    Grid, validity and sparse-prior rules are :class:`AnchorGenerator`'s.

    Args:
        strides: Per level ``s`` or ``(s_w, s_h)``.
        base_sizes: Per level the anchors' ``(w, h)``; every level has as many.

    Raises:
        ValueError: the levels have different anchor counts, or strides and sizes differ in
            length.

    Example:
        >>> gen = YOLOAnchorGenerator(strides=[32], base_sizes=[[(10, 13), (16, 30)]])
        >>> gen.base_anchors[0]
        tensor([[11.0000,  9.5000, 21.0000, 22.5000],
                [ 8.0000,  1.0000, 24.0000, 31.0000]])
        >>> gen.responsible_flags([(2, 2)], torch.tensor([[40., 0., 60., 20.]]))[0].tolist()
        [False, False, True, True, False, False, False, False]
    """

    def __init__(
        self, strides: Sequence[int | Sequence[int]], base_sizes: Sequence[Sequence[Sequence[int]]]
    ) -> None:
        if len(strides) != len(base_sizes):
            raise ValueError(
                f"YOLOAnchorGenerator: {len(strides)} strides for {len(base_sizes)} levels of "
                "base_sizes"
            )
        counts = {len(level) for level in base_sizes}
        if len(counts) != 1:
            raise ValueError(
                f"YOLOAnchorGenerator: every level needs as many base sizes, got {base_sizes}"
            )
        self.strides = [_pair(stride) for stride in strides]
        self.centers = [(s[0] / 2.0, s[1] / 2.0) for s in self.strides]
        #: per level the anchors' ``(w, h)``
        self.level_sizes: list[list[tuple[int, int]]] = [
            [_pair(size) for size in level] for level in base_sizes
        ]
        self.base_sizes = self.level_sizes  # type: ignore[assignment]  # v2's name, per level
        self.center_offset = 0.0
        self.scale_major = True
        self.base_anchors = self.gen_base_anchors()

    def gen_base_anchors(self) -> list[torch.Tensor]:
        """Per level ``Tensor[A, 4]``: boxes of the level's sizes around ``stride / 2``."""
        assert self.centers is not None
        anchors = []
        for (cx, cy), sizes in zip(self.centers, self.level_sizes, strict=True):
            rows = [[cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h] for w, h in sizes]
            anchors.append(torch.tensor(rows, dtype=torch.float32))
        return anchors

    def responsible_flags(
        self,
        featmap_sizes: Sequence[Sequence[int]],
        gt_bboxes: torch.Tensor,
        device: Device = "cpu",
    ) -> list[torch.Tensor]:
        """Per level, a bool ``Tensor[h * w * A]``: a ground-truth centre lies in the cell."""
        self._check_levels(featmap_sizes, "responsible_flags")
        centers = ((gt_bboxes[:, :2] + gt_bboxes[:, 2:]) * 0.5).to(device)
        flags = []
        for (feat_h, feat_w), (stride_w, stride_h), num in zip(
            featmap_sizes, self.strides, self.num_base_priors, strict=True
        ):
            grid_x = torch.floor(centers[:, 0] / stride_w).long()
            grid_y = torch.floor(centers[:, 1] / stride_h).long()
            cells = torch.zeros(feat_h * feat_w, dtype=torch.bool, device=device)
            cells[grid_y * feat_w + grid_x] = True
            flags.append(cells[:, None].expand(-1, num).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(strides={self.strides}, base_sizes={self.level_sizes}, "
            f"num_levels={self.num_levels})"
        )
