"""Tests of the crop transforms of ``datasets.transforms.crop``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from detforge.datasets.transforms.crop import MinIoURandomCrop, RandomCenterCropPad, RandomCrop
from detforge.evaluation.overlaps import bbox_overlaps_np
from detforge.registry import TRANSFORMS, build_module
from detforge.structures.masks import BitmapMasks, PolygonMasks
from tests.datasets.transforms._helpers import (
    check_invariants,
    check_masks_match_boxes,
    find_offset,
    make_sample,
)

# ----------------------------------------------------------------------------- RandomCrop


def test_random_crop_seeded_literal_window() -> None:
    r = make_sample(h=40, w=50)
    src = copy.deepcopy(r)
    np.random.seed(0)  # draws randint(0, 21) -> 12 (rows), then 15 (columns)
    out = RandomCrop(crop_size=(20, 30), allow_negative_crop=True)(r)
    assert out is not None
    np.testing.assert_array_equal(out["img"], src["img"][12:32, 15:45])
    np.testing.assert_array_equal(out["gt_semantic_seg"], src["gt_semantic_seg"][12:32, 15:45])
    expected = src["gt_bboxes"] - np.array([15, 12, 15, 12], np.float32)
    expected[:, 0::2] = expected[:, 0::2].clip(0, 30)
    expected[:, 1::2] = expected[:, 1::2].clip(0, 20)
    keep = (expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1])
    np.testing.assert_array_equal(out["gt_bboxes"], expected[keep])
    assert out["gt_labels"].tolist() == np.flatnonzero(keep).tolist()


@pytest.mark.parametrize(
    "crop_type, crop_size",
    [
        ("absolute", (30, 40)),
        ("absolute_range", (20, 50)),
        ("relative", (0.5, 0.7)),
        ("relative_range", (0.3, 0.6)),
    ],
)
def test_random_crop_properties(crop_type: str, crop_size: tuple[float, float]) -> None:
    for seed in range(8):
        np.random.seed(seed)
        r = make_sample(seed=seed, with_ignore=True)
        r_src = copy.deepcopy(r)
        out = RandomCrop(crop_size, crop_type=crop_type, allow_negative_crop=True)(r)
        assert out is not None
        check_invariants(out)
        check_masks_match_boxes(out, tol=0)
        assert out["gt_bboxes_ignore"].dtype == np.float32
        h, w = out["img"].shape[:2]
        if crop_type == "absolute":
            assert (h, w) == (30, 40)
        elif crop_type == "relative":
            assert (h, w) == (int(60 * 0.5 + 0.5), int(80 * 0.7 + 0.5))
        elif crop_type == "absolute_range":
            assert 20 <= h <= 50 and 20 <= w <= 50
        else:
            assert int(60 * 0.3 + 0.5) <= h <= 60 and int(80 * 0.6 + 0.5) <= w <= 80
        # every kept box is its own (label = original index) box moved into the crop
        x, y = find_offset(r_src["img"], out["img"])
        moved = r_src["gt_bboxes"][out["gt_labels"]] - np.array([x, y, x, y], np.float32)
        moved[:, 0::2] = moved[:, 0::2].clip(0, w)
        moved[:, 1::2] = moved[:, 1::2].clip(0, h)
        np.testing.assert_array_equal(out["gt_bboxes"], moved)
        seg = r_src["gt_semantic_seg"][y : y + h, x : x + w]
        np.testing.assert_array_equal(out["gt_semantic_seg"], seg)


def test_random_crop_returns_none_without_boxes_unless_allowed() -> None:
    r = make_sample(h=40, w=40, n=1)
    r["gt_bboxes"] = np.array([[0, 0, 5, 5]], np.float32)
    r["gt_masks"] = r["gt_masks"][[0]]
    np.random.seed(0)  # window offsets (12, 15): the box is left out
    assert RandomCrop(crop_size=(20, 20))(copy.deepcopy(r)) is None
    np.random.seed(0)
    out = RandomCrop(crop_size=(20, 20), allow_negative_crop=True)(r)
    assert out is not None and out["gt_bboxes"].shape == (0, 4) and len(out["gt_masks"]) == 0


def test_random_crop_recompute_bbox_uses_masks() -> None:
    r = make_sample(h=40, w=40, n=1)
    r["gt_bboxes"] = np.array([[0, 0, 40, 40]], np.float32)
    m = np.zeros((1, 40, 40), np.uint8)
    m[0, 20:25, 22:30] = 1
    r["gt_masks"] = BitmapMasks(m, 40, 40)
    np.random.seed(0)
    out = RandomCrop(crop_size=(30, 30), recompute_bbox=True)(r)
    assert out is not None
    np.random.seed(0)
    oy, ox = np.random.randint(0, 11), np.random.randint(0, 11)
    assert out["gt_bboxes"].tolist() == [[22 - ox, 20 - oy, 30 - ox, 25 - oy]]
    assert out["gt_bboxes"].dtype == np.float32


def test_random_crop_image_smaller_than_crop_keeps_image() -> None:
    r = make_sample(h=20, w=30)
    out = RandomCrop(crop_size=(100, 100))(copy.deepcopy(r))
    assert out is not None and out["img"].shape == (20, 30, 3)
    np.testing.assert_array_equal(out["gt_bboxes"], r["gt_bboxes"])


def test_random_crop_polygon_masks() -> None:
    poly = PolygonMasks([[np.array([10, 10, 30, 10, 30, 30, 10, 30], float)]], 40, 40)
    r = dict(
        img=np.zeros((40, 40, 3), np.uint8),
        bbox_fields=["gt_bboxes"],
        gt_bboxes=np.array([[10, 10, 30, 30]], np.float32),
        gt_labels=np.array([0]),
        gt_masks=poly,
    )
    np.random.seed(3)
    out = RandomCrop(crop_size=(25, 25))(r)
    assert out is not None
    assert np.abs(out["gt_masks"].get_bboxes() - out["gt_bboxes"]).max() <= 1


def test_random_crop_arguments_and_repr() -> None:
    with pytest.raises(AssertionError):
        RandomCrop(crop_size=(-1, 0))
    with pytest.raises(ValueError, match="crop_type"):
        RandomCrop(crop_size=(1, 1), crop_type="unknown")
    with pytest.raises(AssertionError):
        RandomCrop(crop_size=(0, 0), crop_type="relative")
    with pytest.raises(AssertionError):
        RandomCrop(crop_size=(30, 20), crop_type="absolute_range")
    t = build_module(dict(type="RandomCrop", crop_size=(5, 6)), TRANSFORMS)
    assert repr(t) == (
        "RandomCrop(crop_size=(5, 6), crop_type=absolute, allow_negative_crop=False, "
        "bbox_clip_border=True)"
    )


# ----------------------------------------------------------------------------- MinIoURandomCrop


def test_min_iou_random_crop_properties_and_centers() -> None:
    modes = set()
    for seed in range(12):
        np.random.seed(seed)
        src = make_sample(seed=seed, n=1 + 2 * (seed % 2), with_ignore=seed % 3 == 0)
        t = MinIoURandomCrop()
        out = t(copy.deepcopy(src))
        check_invariants(out)
        check_masks_match_boxes(out, tol=0)
        modes.add(t.mode)
        if t.mode == 1:
            np.testing.assert_array_equal(out["gt_bboxes"], src["gt_bboxes"])
            continue
        h, w = out["img"].shape[:2]
        patch = np.array([[0, 0, w, h]], np.float32)
        for key in src["bbox_fields"]:
            assert (bbox_overlaps_np(patch, out[key]) >= t.mode).all()
        x, y = find_offset(src["img"], out["img"])
        np.testing.assert_array_equal(
            out["gt_semantic_seg"], src["gt_semantic_seg"][y : y + h, x : x + w]
        )
        centers = (src["gt_bboxes"][:, :2] + src["gt_bboxes"][:, 2:]) / 2
        inside = (
            (centers[:, 0] > x)
            & (centers[:, 0] < x + w)
            & (centers[:, 1] > y)
            & (centers[:, 1] < y + h)
        )
        assert out["gt_labels"].tolist() == np.flatnonzero(inside).tolist()
        expected = src["gt_bboxes"][inside].copy()
        expected[:, 0::2] = expected[:, 0::2].clip(x, x + w) - x
        expected[:, 1::2] = expected[:, 1::2].clip(y, y + h) - y
        np.testing.assert_allclose(out["gt_bboxes"], expected)
    assert {0, 1} < modes  # a positive IoU threshold was exercised too


def test_min_iou_random_crop_single_img_field_and_repr() -> None:
    r = make_sample()
    r["img1"] = r["img"]
    r["img_fields"] = ["img", "img1"]
    with pytest.raises(AssertionError):
        MinIoURandomCrop()(r)
    assert repr(MinIoURandomCrop()) == (
        "MinIoURandomCrop(min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3, "
        "bbox_clip_border=True)"
    )


def test_min_iou_random_crop_without_boxes_still_crops_consistently() -> None:
    r = make_sample(n=1)
    r["gt_bboxes"] = np.zeros((0, 4), np.float32)
    r["gt_labels"] = np.zeros(0, np.int64)
    r["gt_masks"] = r["gt_masks"][[]]
    np.random.seed(2)
    out = MinIoURandomCrop()(r)
    assert out["gt_semantic_seg"].shape == out["img"].shape[:2]


# ----------------------------------------------------------------------------- RandomCenterCropPad

_NORM = dict(mean=[10.0, 20.0, 30.0], std=[1.0, 1.0, 1.0], to_rgb=True)


def test_random_center_crop_pad_test_mode() -> None:
    t = RandomCenterCropPad(
        crop_size=None,
        ratios=None,
        border=None,
        test_mode=True,
        test_pad_mode=("logical_or", 127),
        **_NORM,
    )
    img = np.ones((100, 200, 3), np.float32)
    out = t({"img": img.copy()})
    assert out["img"].shape == (127, 255, 3) and out["img_shape"] == (100, 200, 3)
    top, bottom, left, right = out["border"]
    assert (bottom - top, right - left) == (100, 200)
    np.testing.assert_array_equal(out["img"][int(top) : int(bottom), int(left) : int(right)], img)
    assert (out["img"][0, 0] == [30, 20, 10]).all()
    t = RandomCenterCropPad(
        crop_size=None,
        ratios=None,
        border=None,
        test_mode=True,
        test_pad_mode=("size_divisor", 32),
        **_NORM,
    )
    assert t({"img": img.copy()})["img"].shape == (128, 224, 3)


def test_random_center_crop_pad_train_mode_properties() -> None:
    t = RandomCenterCropPad(
        crop_size=(64, 64), ratios=(0.5, 1.0), border=16, test_pad_mode=None, **_NORM
    )
    for seed in range(6):
        np.random.seed(seed)
        r = make_sample(seed=seed)
        r["img"] = r["img"].astype(np.float32)
        for key in ("gt_masks", "gt_semantic_seg"):
            r.pop(key)
        r["mask_fields"], r["seg_fields"] = [], []
        out = t(r)
        assert out["img"].shape in ((32, 32, 3), (64, 64, 3))
        check_invariants(out, masks=False, seg=False)
        assert len(out["gt_bboxes"]) > 0
    r = make_sample()
    r["img"] = r["img"].astype(np.float32)
    with pytest.raises(NotImplementedError):
        t(r)
    with pytest.raises(TypeError, match="float32"):
        t(make_sample())


def test_random_center_crop_pad_arguments_and_repr() -> None:
    with pytest.raises(AssertionError):
        RandomCenterCropPad(crop_size=(4, 4), test_mode=True, **_NORM)
    with pytest.raises(AssertionError):
        RandomCenterCropPad(crop_size=(4, 4), test_pad_mode=("logical_or", 127), **_NORM)
    with pytest.raises(AssertionError):
        RandomCenterCropPad(crop_size=(4, 4), test_pad_mode=None)
    t = RandomCenterCropPad(crop_size=(4, 4), test_pad_mode=None, **_NORM)
    assert repr(t) == (
        "RandomCenterCropPad(crop_size=(4, 4), ratios=(0.9, 1.0, 1.1), border=128, "
        "mean=[10.0, 20.0, 30.0], std=[1.0, 1.0, 1.0], to_rgb=True, test_mode=False, "
        "test_pad_mode=None, bbox_clip_border=True)"
    )
    assert RandomCenterCropPad._get_border(128, 512) == 128
    assert RandomCenterCropPad._get_border(128, 200) == 64
