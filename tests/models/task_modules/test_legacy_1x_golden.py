"""``LegacyDeltaXYWHBBoxCoder`` and ``LegacyAnchorGenerator`` reproduce MMDetection's numbers
for the v1 settings of configs/legacy_1.x (tests/data/goldens/legacy_1x,
tools/goldens/legacy_1x.py)."""

from __future__ import annotations

import pytest
import torch

import detforge.models  # noqa: F401  (registers the task utils)
from detforge.registry import TASK_UTILS, build_module
from tests.models.v2_goldens import assert_all_close, assert_close, load

CONFIGS = load("legacy_1x", "configs.json")
INPUT = load("legacy_1x", "input.pt")
EXPECTED = load("legacy_1x", "expected.pt")


@pytest.mark.parametrize("key", sorted(CONFIGS["coders"]))
def test_coder_matches_mmdetection(key: str) -> None:
    coder = build_module(CONFIGS["coders"][key], TASK_UTILS)
    boxes, gts, deltas = INPUT["boxes"], INPUT["gts"], INPUT["deltas"]
    assert_close(coder.encode(boxes, gts), EXPECTED[f"{key}_encode"], "encode")
    assert_close(coder.decode(boxes, deltas), EXPECTED[f"{key}_decode"], "decode")
    clipped = coder.decode(boxes, deltas, max_shape=(80, 100))
    assert_close(clipped, EXPECTED[f"{key}_decode_clip"], "decode with max_shape")


@pytest.mark.parametrize("key", sorted(CONFIGS["anchors"]))
def test_anchor_generator_matches_mmdetection(key: str) -> None:
    prior = build_module(CONFIGS["anchors"][key], TASK_UTILS)
    sizes = [tuple(s) for s in INPUT["sizes"]]
    assert_all_close(prior.base_anchors, EXPECTED[f"{key}_base"], "base anchors")
    assert_all_close(prior.grid_priors(sizes), EXPECTED[f"{key}_grid"], "grid")
    for got, want in zip(prior.valid_flags(sizes, (20, 25)), EXPECTED[f"{key}_valid"], strict=True):
        assert torch.equal(got, want)
