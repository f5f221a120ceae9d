"""``LegacyAnchorGenerator`` and ``LegacySSDAnchorGenerator``: MMDetection v1.x anchors (v2's
``configs/legacy_1.x``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
from detforge.models.task_modules.prior_generators.ssd_anchor_generator import SSDAnchorGenerator
from detforge.registry import TASK_UTILS

__all__ = ["LegacyAnchorGenerator", "LegacySSDAnchorGenerator"]


@TASK_UTILS.register_module()
class LegacyAnchorGenerator(AnchorGenerator):
    """:class:`AnchorGenerator` with v1.x's base anchors (v2's ``LegacyAnchorGenerator``).

    The base anchors of a level differ from v2's in three ways: the centre is
    ``center_offset * (base_size - 1)`` (the v1 configs set ``center_offset=0.5``), the
    corners are ``centre ± (size - 1) / 2`` (pixel-inclusive sizes), and they are rounded to
    whole pixels. Shifting over the grid and everything else is :class:`AnchorGenerator`'s.
    Takes :class:`AnchorGenerator`'s arguments.

    Example:
        >>> gen = LegacyAnchorGenerator([16], [1.], [1.], [9], center_offset=0.5)
        >>> gen.grid_priors([(2, 2)])[0]
        tensor([[ 0.,  0.,  8.,  8.],
                [16.,  0., 24.,  8.],
                [ 0., 16.,  8., 24.],
                [16., 16., 24., 24.]])
    """

    def gen_single_level_base_anchors(
        self,
        base_size: float,
        scales: torch.Tensor,
        ratios: torch.Tensor,
        center: Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Rounded v1 base anchors ``Tensor[len(ratios) * len(scales), 4]`` of one level."""
        if center is None:
            center = (self.center_offset * (base_size - 1),) * 2
        # the sizes of v2's anchors (centred at 0), placed the v1 way
        sizes = super().gen_single_level_base_anchors(base_size, scales, ratios, (0.0, 0.0))
        half_w = 0.5 * (sizes[:, 2] - sizes[:, 0] - 1)
        half_h = 0.5 * (sizes[:, 3] - sizes[:, 1] - 1)
        x_center, y_center = center
        return torch.stack(
            [x_center - half_w, y_center - half_h, x_center + half_w, y_center + half_h], dim=-1
        ).round()


@TASK_UTILS.register_module()
class LegacySSDAnchorGenerator(SSDAnchorGenerator, LegacyAnchorGenerator):
    """:class:`SSDAnchorGenerator`'s sizes and order with v1.x's base anchors: centred at
    ``(stride - 1) / 2`` with pixel-inclusive, rounded corners (see
    :class:`LegacyAnchorGenerator`); v2's ``configs/legacy_1.x/ssd300_coco_v1.py``.

    Args:
        strides: Per level ``s`` or ``(s_w, s_h)``.
        ratios: Per level the aspect ratios ``r`` (each gives ``1 / r`` and ``r``).
        basesize_ratio_range: Size range as fractions of ``input_size``.
        input_size: 300 or 512.
        scale_major: Base anchor order before SSD's reordering (SSD configs say False).

    Example:
        >>> gen = LegacySSDAnchorGenerator(
        ...     [8, 16, 32], [[2], [2], [2]], (0.15, 0.9), scale_major=False)
        >>> gen.base_anchors[0][:2]
        tensor([[ -6.,  -6.,  14.,  14.],
                [-11., -11.,  18.,  18.]])
    """

    def __init__(
        self,
        strides: Sequence[int | Sequence[int]],
        ratios: Sequence[Sequence[float]],
        basesize_ratio_range: Sequence[float],
        input_size: int = 300,
        scale_major: bool = True,
    ) -> None:
        super().__init__(
            strides=strides,
            ratios=ratios,
            basesize_ratio_range=basesize_ratio_range,
            input_size=input_size,
            scale_major=scale_major,
        )
        self.centers = [((s[0] - 1) / 2.0, (s[1] - 1) / 2.0) for s in self.strides]
        self.base_anchors = self.gen_base_anchors()
