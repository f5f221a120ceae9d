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
            x_center = y_center = self.center_offset * (base_size - 1)
        else:
            x_center, y_center = center
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (base_size * w_ratios[:, None] * scales[None, :]).view(-1)
            hs = (base_size * h_ratios[:, None] * scales[None, :]).view(-1)
        else:
            ws = (base_size * scales[:, None] * w_ratios[None, :]).view(-1)
            hs = (base_size * scales[:, None] * h_ratios[None, :]).view(-1)
        half_w, half_h = 0.5 * (ws - 1), 0.5 * (hs - 1)
        return torch.stack(
            [x_center - half_w, y_center - half_h, x_center + half_w, y_center + half_h], dim=-1
        ).round()
