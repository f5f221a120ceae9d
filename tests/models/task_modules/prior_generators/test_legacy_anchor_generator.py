"""``LegacyAnchorGenerator`` (v1.x anchors): v2's doctest, the rounding and the ``- 1``s."""

from __future__ import annotations

import torch

from detforge.models.task_modules.prior_generators import AnchorGenerator, LegacyAnchorGenerator
from detforge.registry import TASK_UTILS, build_module


def test_v2_docstring_example() -> None:
    gen = LegacyAnchorGenerator([16], [1.0], [1.0], [9], center_offset=0.5)
    assert gen.grid_anchors([(2, 2)])[0].tolist() == [
        [0.0, 0.0, 8.0, 8.0],
        [16.0, 0.0, 24.0, 8.0],
        [0.0, 16.0, 8.0, 24.0],
        [16.0, 16.0, 24.0, 24.0],
    ]


def test_v1_rpn_base_anchors() -> None:
    """The base anchors of the v1 Faster R-CNN RPN at stride 4 (scale 8): centre 1.5."""
    gen = build_module(
        dict(
            type="LegacyAnchorGenerator",
            center_offset=0.5,
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64],
        ),
        TASK_UTILS,
    )
    # w = 4 * 8 / sqrt(r) (h = 4 * 8 * sqrt(r)); corners 1.5 -+ (size - 1) / 2, rounded
    assert gen.base_anchors[0].tolist() == [
        [-21.0, -9.0, 24.0, 12.0],
        [-14.0, -14.0, 17.0, 17.0],
        [-9.0, -21.0, 12.0, 24.0],
    ]
    plain = AnchorGenerator(scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4], center_offset=0.5)
    assert not torch.equal(plain.base_anchors[0], gen.base_anchors[0])
    assert torch.equal(gen.base_anchors[1], gen.base_anchors[1].round())


def test_legacy_ssd_anchors_are_v1s_by_hand() -> None:
    # ssd300_coco_v1: level 0 has min size 21 (0.07 * 300) and max 45, centre (8 - 1) / 2
    from detforge.models.task_modules.prior_generators import LegacySSDAnchorGenerator

    gen = LegacySSDAnchorGenerator(
        strides=[8, 16, 32, 64, 100, 300],
        ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        basesize_ratio_range=(0.15, 0.9),
        input_size=300,
        scale_major=False,
    )
    # 21 square: 3.5 -+ 10 -> (-6.5, 13.5) rounded half to even; sqrt(21 * 45) = 30.74 square;
    # ratio 1/2: w = 21 * sqrt(2) = 29.70, h = 14.85 around 3.5, rounded
    expected = [[-6, -6, 14, 14], [-11, -11, 18, 18], [-11, -3, 18, 10], [-3, -11, 10, 18]]
    assert gen.base_anchors[0].tolist() == expected
    assert [len(a) for a in gen.base_anchors] == [4, 6, 6, 6, 4, 4]
    # one grid step moves every anchor by the stride, as v2's grid
    priors = gen.grid_priors([(38, 38)] + [(1, 1)] * 5)[0]
    assert priors[4].tolist() == [2.0, -6.0, 22.0, 14.0]
