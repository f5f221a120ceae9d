"""Approximating anchors of the square-anchor heads (SABL, Guided Anchoring; MMDetection v2.28).

Every square anchor position has ``approxs_per_octave`` approximating anchors (the scales and
ratios of the approx generator, in a row); a position takes part in training when any of its
approximating anchors is valid and inside the image (``allowed_border`` pixels of slack).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.models.utils import anchor_inside_flags
from detforge.structures import ImgMeta

__all__ = ["sampled_approxs"]


def sampled_approxs(
    approx_generator: Any,
    featmap_sizes: Sequence[Any],
    img_metas: Sequence[ImgMeta],
    allowed_border: float,
    device: Any = "cpu",
) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Per image, per level the approximating anchors ``Tensor[n_l * A, 4]`` and the inside
    flags ``Tensor[n_l]`` of their positions (``A`` the generator's priors per position).

    Example:
        >>> from detforge.models.task_modules.prior_generators import AnchorGenerator
        >>> gen = AnchorGenerator(strides=[8], ratios=[0.5, 1.0], scales=[4])
        >>> meta = dict(img_shape=(16, 16, 3), pad_shape=(16, 16, 3))
        >>> approxs, flags = sampled_approxs(gen, [(2, 2)], [meta], allowed_border=0)
        >>> tuple(approxs[0][0].shape), flags[0][0].tolist()
        ((8, 4), [False, False, False, False])
    """
    per_position = int(approx_generator.num_base_priors[0])
    approxs = approx_generator.grid_priors(featmap_sizes, device=device)
    approxs_list = [approxs for _ in img_metas]
    inside_list = []
    for meta in img_metas:
        valid = approx_generator.valid_flags(featmap_sizes, meta["pad_shape"], device)
        levels = []
        for level_approxs, level_valid in zip(approxs, valid, strict=True):
            inside = [
                anchor_inside_flags(
                    level_approxs[i::per_position],
                    level_valid[i::per_position],
                    meta["img_shape"][:2],
                    allowed_border,
                )
                for i in range(per_position)
            ]
            levels.append(torch.stack(inside, 0).sum(dim=0) > 0)
        inside_list.append(levels)
    return approxs_list, inside_list
