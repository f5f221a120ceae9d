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
