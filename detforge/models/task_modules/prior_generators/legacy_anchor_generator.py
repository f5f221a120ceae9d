"""``LegacyAnchorGenerator``: MMDetection v1.x anchors (v2's ``configs/legacy_1.x``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
from detforge.registry import TASK_UTILS

__all__ = ["LegacyAnchorGenerator"]


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
