"""``SSDAnchorGenerator``: SSD's per-level anchor sets (``mmdet.core.anchor.SSDAnchorGenerator``).

Level ``k`` has a minimum size ``min_k`` and a maximum size ``max_k``. Its anchors, centred on
the middle of each feature cell (``stride / 2``), are in this order: the square of side
``min_k``, the square of side ``sqrt(min_k * max_k)``, then for every ratio ``r`` of the level
the boxes of area ``min_k²`` with ``h / w = 1 / r`` and ``r`` — so 4 anchors for ``[2]`` and 6
for ``[2, 3]``.

Without explicit ``min_sizes``/``max_sizes`` the sizes follow v2's hard-coded SSD300/SSD512
rule: the percentages ``p`` from ``basesize_ratio_range`` (as integers) in steps of
``floor(max - min) // (levels - 2)`` give ``min = int(input_size * p / 100)`` and
``max = int(input_size * (p + step) / 100)``, and a smaller first level is prepended (SSD300:
7–15 % on COCO, 10–20 % on VOC; SSD512: 4–10 % on COCO, 7–15 % on VOC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.modules.utils import _pair

from detforge.models.task_modules.prior_generators.anchor_generator import AnchorGenerator
from detforge.registry import TASK_UTILS

__all__ = ["SSDAnchorGenerator", "ssd_anchor_sizes"]

#: ``(input_size, basesize_ratio_range[0])`` → the first level's (min, max) in percent
_FIRST_LEVEL: dict[tuple[int, float], tuple[int, int]] = {
    (300, 0.15): (7, 15),  # SSD300 COCO
    (300, 0.2): (10, 20),  # SSD300 VOC
    (512, 0.1): (4, 10),  # SSD512 COCO
    (512, 0.15): (7, 15),  # SSD512 VOC
}


def ssd_anchor_sizes(
    num_levels: int, input_size: int, basesize_ratio_range: Sequence[float]
) -> tuple[list[int], list[int]]:
    """v2's hard-coded SSD anchor sizes: ``(min_sizes, max_sizes)``, one per level.

    Raises:
        ValueError: fewer than 3 levels, ``input_size`` is not 300 or 512, its
            ``basesize_ratio_range[0]`` is not one of v2's, or the rule does not give
            ``num_levels`` sizes.

    Example:
        >>> ssd_anchor_sizes(6, 300, (0.15, 0.9))
        ([21, 45, 99, 153, 207, 261], [45, 99, 153, 207, 261, 315])
    """
    if num_levels < 3:
        raise ValueError(
            f"SSDAnchorGenerator: the basesize_ratio_range rule needs at least 3 levels, got "
            f"{num_levels}; give min_sizes and max_sizes"
        )
    low, high = basesize_ratio_range
    first = _FIRST_LEVEL.get((input_size, low))
    if first is None:
        raise ValueError(
            f"SSDAnchorGenerator: without min_sizes/max_sizes, input_size must be 300 or 512 "
            f"with basesize_ratio_range[0] in {sorted(k[1] for k in _FIRST_LEVEL if k[0] == 300)}"
            f" (300) or {sorted(k[1] for k in _FIRST_LEVEL if k[0] == 512)} (512); got "
            f"input_size={input_size}, basesize_ratio_range={tuple(basesize_ratio_range)}"
        )
    min_ratio, max_ratio = int(low * 100), int(high * 100)
    step = int(np.floor(max_ratio - min_ratio) / (num_levels - 2))
    percents = range(min_ratio, max_ratio + 1, step)
    min_sizes = [int(input_size * first[0] / 100)] + [int(input_size * p / 100) for p in percents]
    max_sizes = [int(input_size * first[1] / 100)]
    max_sizes += [int(input_size * (p + step) / 100) for p in percents]
    if len(min_sizes) != num_levels:
        raise ValueError(
            f"SSDAnchorGenerator: basesize_ratio_range={tuple(basesize_ratio_range)} gives "
            f"{len(min_sizes)} anchor sizes for {num_levels} levels"
        )
    return min_sizes, max_sizes


@TASK_UTILS.register_module()
class SSDAnchorGenerator(AnchorGenerator):
    """SSD anchors (see the module docstring); grid and validity rules are
    :class:`AnchorGenerator`'s.

    Args:
        strides: Per level ``s`` or ``(s_w, s_h)``.
        ratios: Per level the aspect ratios ``r`` (each gives ``1 / r`` and ``r``).
        min_sizes: Per-level minimum anchor sizes; with ``max_sizes`` or neither.
        max_sizes: Per-level maximum anchor sizes.
        basesize_ratio_range: Size range as fractions of ``input_size`` (without sizes).
        input_size: 300 or 512 (without sizes).
        scale_major: Base anchor order before SSD's reordering (SSD configs say False).

    Raises:
        ValueError: the per-level lists differ in length, or only one of
            ``min_sizes``/``max_sizes`` is given.

    Example:
        >>> gen = SSDAnchorGenerator(
        ...     strides=[8], ratios=[[2]], min_sizes=[4], max_sizes=[16], scale_major=False)
        >>> gen.base_anchors[0]
        tensor([[2.0000, 2.0000, 6.0000, 6.0000],
                [0.0000, 0.0000, 8.0000, 8.0000],
                [1.1716, 2.5858, 6.8284, 5.4142],
                [2.5858, 1.1716, 5.4142, 6.8284]])
    """

    def __init__(
        self,
        strides: Sequence[int | Sequence[int]],
        ratios: Sequence[Sequence[float]],
        min_sizes: Sequence[float] | None = None,
        max_sizes: Sequence[float] | None = None,
        basesize_ratio_range: Sequence[float] = (0.15, 0.9),
        input_size: int = 300,
        scale_major: bool = True,
    ) -> None:
        if len(strides) != len(ratios):
            raise ValueError(
                f"SSDAnchorGenerator: {len(strides)} strides for {len(ratios)} ratio lists"
            )
        if (min_sizes is None) != (max_sizes is None):
            raise ValueError(
                "SSDAnchorGenerator: give both min_sizes and max_sizes or neither "
                f"(min_sizes={min_sizes}, max_sizes={max_sizes})"
            )
        self.strides = [_pair(stride) for stride in strides]
        self.input_size = input_size
        self.basesize_ratio_range = tuple(basesize_ratio_range)
        if min_sizes is None or max_sizes is None:
            min_sizes, max_sizes = ssd_anchor_sizes(len(strides), input_size, basesize_ratio_range)
        if not len(min_sizes) == len(max_sizes) == len(strides):
            raise ValueError(
                f"SSDAnchorGenerator: {len(min_sizes)} min_sizes and {len(max_sizes)} max_sizes "
                f"for {len(strides)} strides"
            )
        self.base_sizes = list(min_sizes)
        #: per level: scales ``[1, sqrt(max / min)]`` and ratios ``[1, 1/r1, r1, 1/r2, r2, ...]``
        self.level_scales = [
            torch.tensor([1.0, np.sqrt(hi / lo)], dtype=torch.float32)
            for lo, hi in zip(min_sizes, max_sizes, strict=True)
        ]
        self.level_ratios = [
            torch.tensor([1.0, *(x for r in rs for x in (1 / r, r))], dtype=torch.float32)
            for rs in ratios
        ]
        self.scales = self.level_scales[0]
        self.ratios = self.level_ratios[0]
        self.octave_base_scale = None
        self.scales_per_octave = None
        self.scale_major = scale_major
        self.centers = [(s[0] / 2.0, s[1] / 2.0) for s in self.strides]
        self.center_offset = 0.0
        self.base_anchors = self.gen_base_anchors()

    def gen_base_anchors(self) -> list[torch.Tensor]:
        """Per level ``Tensor[A_k, 4]``: the ``min`` square, the ``sqrt(min·max)`` square, then
        the ratio boxes of size ``min``."""
        assert self.centers is not None
        anchors = []
        for i, base_size in enumerate(self.base_sizes):
            ratios = self.level_ratios[i]
            level = self.gen_single_level_base_anchors(
                base_size, scales=self.level_scales[i], ratios=ratios, center=self.centers[i]
            )
            # with scale_major=False rows are (scale 1: every ratio), (scale 2: every ratio):
            # keep scale 1's, with scale 2's square second
            order = list(range(len(ratios)))
            order.insert(1, len(ratios))
            anchors.append(level[torch.tensor(order)])
        return anchors

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(strides={self.strides}, base_sizes={self.base_sizes}, "
            f"scales={[s.tolist() for s in self.level_scales]}, "
            f"ratios={[r.tolist() for r in self.level_ratios]}, scale_major={self.scale_major}, "
            f"input_size={self.input_size}, basesize_ratio_range={self.basesize_ratio_range}, "
            f"num_levels={self.num_levels})"
        )
