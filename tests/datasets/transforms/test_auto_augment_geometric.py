"""Tests of the AutoAugment geometric transforms: ``Shear``, ``Rotate`` and ``Translate``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from detforge.datasets.transforms.auto_augment_geometric import Rotate, Shear, Translate
from tests.datasets.transforms._helpers import (
    check_invariants,
    check_masks_match_boxes,
    make_sample,
    one_box,
)

# ----------------------------------------------------------------------------- Shear


@pytest.mark.parametrize(
    "direction, expected",
    [("horizontal", [13, 10, 26, 20]), ("vertical", [10, 13, 20, 26])],
)
def test_shear_literal_boxes_masks_and_seg(direction: str, expected: list[int]) -> None:
    r = one_box()
    out = Shear(level=10, prob=1.0, direction=direction, random_negative_prob=0.0)(r)
    assert out["gt_bboxes"].tolist() == [[float(v) for v in expected]]
    check_invariants(out)
    check_masks_match_boxes(out, tol=1)
    assert set(np.unique(out["gt_semantic_seg"])) <= {0, 10, 255}
    corner = out["img"][-1, 0] if direction == "horizontal" else out["img"][0, -1]
    assert (corner == 128).all()  # pixels sheared in from outside get img_fill_val


def test_shear_negation_and_properties() -> None:
    r = one_box()
    out = Shear(level=10, prob=1.0, random_negative_prob=1.0)(r)
    assert out["gt_bboxes"].tolist() == [[4.0, 10.0, 17.0, 20.0]]  # x - 0.3 y
    for seed in range(8):
        np.random.seed(seed)
        out = Shear(level=7, prob=0.8, direction=("horizontal", "vertical")[seed % 2])(
            make_sample(seed=seed)
        )
        check_invariants(out)
        check_masks_match_boxes(out, tol=1, contained=True)


def test_shear_arguments_and_repr() -> None:
    with pytest.raises(AssertionError):
        Shear(level=3, direction="diagonal")
    with pytest.raises(AssertionError):
        Shear(level=3, max_shear_magnitude=2.0)
    with pytest.raises(AssertionError):
        Shear(level=3, img_fill_val=(1, 2))
    with pytest.raises(AssertionError):
        Shear(level=3, img_fill_val=300)
    assert repr(Shear(level=3)) == (
        "Shear(level=3, img_fill_val=(128.0, 128.0, 128.0), seg_ignore_label=255, prob=0.5, "
        "direction=horizontal, max_shear_magnitude=0.3, random_negative_prob=0.5, "
        "interpolation=bilinear)"
    )


# ----------------------------------------------------------------------------- Rotate


def test_rotate_literal_quarter_turn() -> None:
    r = one_box(h=41, w=41, box=(4, 10, 16, 14))
    out = Rotate(level=10, max_rotate_angle=90, prob=1.0, random_negative_prob=0.0)(r)
    # clockwise about (20, 20): (x, y) -> (40 - y, x)
    np.testing.assert_allclose(out["gt_bboxes"], [[26, 4, 30, 16]], atol=1e-4)
    check_invariants(out)
    check_masks_match_boxes(out, tol=1)
    assert set(np.unique(out["gt_semantic_seg"])) <= {0, 10, 255}


def test_rotate_properties_and_mask_consistency() -> None:
    for seed in range(8):
        np.random.seed(seed)
        out = Rotate(level=5, prob=1.0)(make_sample(seed=seed))
        check_invariants(out)
        check_masks_match_boxes(out, tol=1, contained=True)
    # a box well inside the image: its rotated mask fills the rotated box up to ~1 px
    for seed in range(4):
        np.random.seed(seed)
        out = Rotate(level=10, prob=1.0)(one_box(h=60, w=60, box=(22, 25, 38, 35)))
        check_masks_match_boxes(out, tol=1.5)
    out = Rotate(level=5, prob=0.0)(one_box())
    assert out["gt_bboxes"].tolist() == [[10.0, 10.0, 20.0, 20.0]]


def test_rotate_arguments_and_repr() -> None:
    with pytest.raises(AssertionError):
        Rotate(level=3, center=(1, 2, 3))
    with pytest.raises(AssertionError):
        Rotate(level=3, scale="2")
    assert Rotate(level=3, center=5).center == (5, 5)
    assert repr(Rotate(level=3)) == (
        "Rotate(level=3, scale=1, center=None, img_fill_val=(128.0, 128.0, 128.0), "
        "seg_ignore_label=255, prob=0.5, max_rotate_angle=30, random_negative_prob=0.5)"
    )


# ----------------------------------------------------------------------------- Translate


def test_translate_literal_and_filtering() -> None:
    r = one_box()
    r["gt_semantic_seg"] = r["gt_semantic_seg"].copy()
    src = copy.deepcopy(r)
    t = Translate(level=5, prob=1.0, max_translate_offset=20, random_negative_prob=1.0)
    out = t(r)  # offset -10 px horizontally
    assert out["gt_bboxes"].tolist() == [[0.0, 10.0, 10.0, 20.0]]
    np.testing.assert_array_equal(out["img"][:, :30], src["img"][:, 10:])
    assert (out["img"][:, 30:] == 128).all()
    assert (out["gt_semantic_seg"][:, 30:] == 255).all()
    check_masks_match_boxes(out, tol=0)
    r = one_box()
    out = Translate(
        level=10, prob=1.0, max_translate_offset=35, direction="vertical", random_negative_prob=0.0
    )(r)
    assert out["gt_bboxes"].shape == (0, 4) and len(out["gt_masks"]) == 0
    assert out["gt_labels"].shape == (0,)


def test_translate_properties_min_size_and_repr() -> None:
    for seed in range(6):
        np.random.seed(seed)
        out = Translate(level=4, prob=1.0, min_size=3)(make_sample(seed=seed))
        check_invariants(out)
        check_masks_match_boxes(out, tol=0)
        widths = out["gt_bboxes"][:, 2:] - out["gt_bboxes"][:, :2]
        assert (widths > 3).all()
    assert repr(Translate(level=2)) == (
        "Translate(level=2, prob=0.5, img_fill_val=(128.0, 128.0, 128.0), seg_ignore_label=255, "
        "direction=horizontal, max_translate_offset=250.0, random_negative_prob=0.5, "
        "min_size=0)"
    )
