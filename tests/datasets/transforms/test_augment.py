"""Tests of the expand / shift / cut-out transforms of ``datasets.transforms.augment``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from detforge.datasets.transforms.augment import CutOut, Expand, RandomShift
from tests.datasets.transforms._helpers import (
    check_invariants,
    check_masks_match_boxes,
    make_sample,
)

# ----------------------------------------------------------------------------- Expand


def test_expand_ratio_bounds_and_placement() -> None:
    for seed in range(6):
        np.random.seed(seed)
        src = make_sample(h=30, w=40, seed=seed)
        out = Expand(
            mean=(1, 2, 3), to_rgb=True, ratio_range=(1.5, 3), seg_ignore_label=255, prob=1.0
        )(copy.deepcopy(src))
        check_invariants(out)
        check_masks_match_boxes(out, tol=0)
        h, w = out["img"].shape[:2]
        assert 45 <= h <= 90 and 60 <= w <= 120
        left, top = (out["gt_bboxes"][0, :2] - src["gt_bboxes"][0, :2]).astype(int)
        np.testing.assert_array_equal(out["img"][top : top + 30, left : left + 40], src["img"])
        np.testing.assert_array_equal(
            out["gt_semantic_seg"][top : top + 30, left : left + 40], src["gt_semantic_seg"]
        )
        outside = np.ones((h, w), bool)
        outside[top : top + 30, left : left + 40] = False
        assert (out["img"][outside] == [3, 2, 1]).all()  # RGB mean turned to BGR
        assert (out["gt_semantic_seg"][outside] == 255).all()
        assert out["gt_labels"].tolist() == list(range(5))


def test_expand_prob_zero_keeps_input_and_arguments() -> None:
    r = make_sample()
    assert Expand(prob=0.0)(r)["img"].shape == (60, 80, 3)
    with pytest.raises(AssertionError):
        Expand(ratio_range=(0.5, 2))
    with pytest.raises(ValueError, match="seg_ignore_label"):
        Expand(prob=1.0)(make_sample())
    assert repr(Expand()) == (
        "Expand(mean=(0, 0, 0), to_rgb=True, ratio_range=(1, 4), seg_ignore_label=None)"
    )


# ----------------------------------------------------------------------------- RandomShift


def test_random_shift_seeded_literal() -> None:
    src = make_sample(seed=1)
    np.random.seed(7)  # random() = 0.076 < 1, then dx = -7, dy = 22
    out = RandomShift(shift_ratio=1.0, max_shift_px=32)(copy.deepcopy(src))
    dx, dy = -7, 22
    np.testing.assert_array_equal(out["img"][dy:, :dx], src["img"][:-dy, -dx:])
    assert (out["img"][:dy] == 0).all() and (out["img"][:, dx:] == 0).all()
    moved = src["gt_bboxes"] + np.array([dx, dy, dx, dy], np.float32)
    moved[:, 0::2] = moved[:, 0::2].clip(0, 80)
    moved[:, 1::2] = moved[:, 1::2].clip(0, 60)
    keep = (moved[:, 2] - moved[:, 0] > 1) & (moved[:, 3] - moved[:, 1] > 1)
    np.testing.assert_array_equal(out["gt_bboxes"], moved[keep])
    check_invariants(out)
    check_masks_match_boxes(out, tol=0)
    np.testing.assert_array_equal(
        out["gt_semantic_seg"][dy:, :dx], src["gt_semantic_seg"][:-dy, -dx:]
    )


def test_random_shift_properties_and_no_box_case() -> None:
    for seed in range(6):
        np.random.seed(seed)
        out = RandomShift(shift_ratio=1.0)(make_sample(seed=seed))
        check_invariants(out)
        check_masks_match_boxes(out, tol=0)
    r = make_sample(n=1)
    r["gt_bboxes"] = np.array([[0, 0, 2, 2]], np.float32)
    np.random.seed(7)  # dx = -7 pushes the tiny box out: the sample stays as it was
    out = RandomShift(shift_ratio=1.0)(copy.deepcopy(r))
    np.testing.assert_array_equal(out["img"], r["img"])
    assert repr(RandomShift()) == "RandomShift(shift_ratio=0.5, max_shift_px=32, filter_thr_px=1)"


# ----------------------------------------------------------------------------- CutOut


def test_cutout_fills_seeded_holes() -> None:
    img = np.full((20, 30, 3), 9, np.uint8)
    np.random.seed(4)
    out = CutOut(n_holes=2, cutout_shape=(5, 4), fill_in=(1, 2, 3))({"img": img.copy()})["img"]
    np.random.seed(4)
    expected = img.copy()
    for _ in range(np.random.randint(2, 3)):
        x1, y1 = np.random.randint(0, 30), np.random.randint(0, 20)
        np.random.randint(0, 1)
        expected[y1 : y1 + 4, x1 : x1 + 5] = (1, 2, 3)
    np.testing.assert_array_equal(out, expected)
    assert (out != 9).any()


def test_cutout_ratio_range_and_arguments() -> None:
    for seed in range(5):
        np.random.seed(seed)
        img = np.ones((40, 40, 3), np.uint8)
        out = CutOut(n_holes=(1, 3), cutout_ratio=[(0.1, 0.1), (0.2, 0.2)])({"img": img})
        holes = (out["img"] == 0).all(-1)
        assert 0 < holes.sum() <= 3 * 8 * 8
    with pytest.raises(AssertionError):
        CutOut(n_holes=1, cutout_shape=(2, 2), cutout_ratio=(0.1, 0.1))
    with pytest.raises(AssertionError):
        CutOut(n_holes=1)
    assert repr(CutOut(n_holes=1, cutout_shape=(2, 2))) == (
        "CutOut(n_holes=(1, 1), cutout_shape=[(2, 2)], fill_in=(0, 0, 0))"
    )
