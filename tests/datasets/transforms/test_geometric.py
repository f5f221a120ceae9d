"""Resize, RandomFlip and Pad: v2's literal expectations plus round-trip properties."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detforge.datasets.transforms.geometric import Pad, RandomFlip, Resize
from detforge.datasets.transforms.loading import LoadImageFromFile

DIRECTIONS = ("horizontal", "vertical", "diagonal")


def _masks_module() -> Any:
    return pytest.importorskip("detforge.structures.masks")


def _color(mmdet_test_data: Path) -> dict[str, Any]:
    return LoadImageFromFile()(
        dict(img_prefix=str(mmdet_test_data), img_info={"filename": "color.jpg"})
    )


def _random_boxes(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    xy = rng.uniform(0, 1, (n, 4)) * [w, h, w, h]
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])], 1)
    return boxes.astype(np.float32)


def _synthetic(seed: int = 0, h: int = 37, w: int = 53, with_masks: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    results: dict[str, Any] = dict(
        img=img,
        img_shape=img.shape,
        ori_shape=img.shape,
        img_fields=["img"],
        gt_bboxes=_random_boxes(rng, 6, h, w),
        gt_bboxes_ignore=_random_boxes(rng, 2, h, w),
        bbox_fields=["gt_bboxes", "gt_bboxes_ignore"],
        gt_semantic_seg=rng.integers(0, 7, (h, w), dtype=np.uint8),
        seg_fields=["gt_semantic_seg"],
        mask_fields=[],
    )
    if with_masks:
        masks_mod = _masks_module()
        bitmaps = (rng.random((3, h, w)) > 0.5).astype(np.uint8)
        results["gt_masks"] = masks_mod.BitmapMasks(bitmaps, h, w)
        results["mask_fields"] = ["gt_masks"]
    return results


def _assert_boxes_ok(results: dict[str, Any]) -> None:
    h, w = results["img_shape"][:2]
    for key in results.get("bbox_fields", []):
        boxes = results[key]
        assert boxes.dtype == np.float32, key
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all(), key
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all(), key
        assert (boxes[:, 2:] >= boxes[:, :2]).all(), key


# --------------------------------------------------------------------------------- Resize


def test_resize_fixed_scale_no_ratio(mmdet_test_data: Path) -> None:
    transform = Resize(img_scale=(1280, 800), multiscale_mode="value", keep_ratio=False)
    results = transform(_color(mmdet_test_data))
    assert results["img"].shape == results["img_shape"] == results["pad_shape"] == (800, 1280, 3)
    assert results["scale_factor"].dtype == np.float32
    np.testing.assert_allclose(results["scale_factor"], [2.5, 800 / 288, 2.5, 800 / 288], rtol=1e-6)
    assert results["keep_ratio"] is False and results["scale"] == (1280, 800)


def test_resize_keep_ratio_matches_v2(mmdet_test_data: Path) -> None:
    results = Resize(img_scale=(1333, 800), keep_ratio=True)(_color(mmdet_test_data))
    # long side 512 -> 1333 binds first: factor 1333/512, h = int(288 * 2.6035 + 0.5) = 750
    assert results["img_shape"] == (750, 1333, 3)
    np.testing.assert_array_equal(
        results["scale_factor"],
        np.array([1333 / 512, 750 / 288, 1333 / 512, 750 / 288], np.float32),
    )
    assert results["scale_idx"] == 0 and results["keep_ratio"] is True
    # orientation-agnostic: a portrait image gets the same bound
    portrait = Resize(img_scale=(1333, 800))({"img": np.zeros((512, 288, 3), np.uint8)})
    assert portrait["img_shape"] == (1333, 750, 3)


def test_resize_seg_map_with_image(mmdet_test_data: Path) -> None:
    results = _color(mmdet_test_data)
    seg = (results["img"][..., 0] // 64).astype(np.uint8)
    results["gt_semantic_seg"] = seg
    results["seg_fields"] = ["gt_semantic_seg"]
    out = Resize(img_scale=(640, 400), multiscale_mode="value", keep_ratio=False)(results)
    assert out["img_shape"] == (400, 640, 3)
    assert out["gt_semantic_seg"].shape == (400, 640)
    # nearest interpolation: no new label values appear
    assert set(np.unique(out["gt_semantic_seg"])) <= set(np.unique(seg))


def test_resize_pillow_backend_same_shape(mmdet_test_data: Path) -> None:
    results = Resize(img_scale=(1333, 800), backend="pillow")(_color(mmdet_test_data))
    assert results["img_shape"] == (750, 1333, 3)
    assert results["img"].dtype == np.uint8
    with pytest.raises(ValueError, match="backend"):
        Resize(img_scale=(10, 10), backend="magick")


def test_resize_multiscale_draws() -> None:
    np.random.seed(3)
    ranged = Resize(img_scale=[(1333, 640), (1333, 800)], multiscale_mode="range")
    shorts = set()
    for _ in range(20):
        scale = ranged({"img": np.zeros((10, 20, 3), np.uint8)})["scale"]
        assert scale[0] == 1333 and 640 <= scale[1] <= 800
        shorts.add(scale[1])
    assert len(shorts) > 5
    valued = Resize(img_scale=[(100, 50), (200, 100)], multiscale_mode="value")
    picked = {valued({"img": np.zeros((10, 20, 3), np.uint8)})["scale"] for _ in range(20)}
    assert picked == {(100, 50), (200, 100)}
    ratio = Resize(img_scale=(100, 50), ratio_range=(0.5, 2.0))
    scale = ratio({"img": np.zeros((10, 20, 3), np.uint8)})["scale"]
    assert 50 <= scale[0] <= 200 and 25 <= scale[1] <= 100
    assert abs(scale[1] - scale[0] / 2) <= 1


def test_resize_seeded_draw_is_reproducible() -> None:
    transform = Resize(img_scale=[(1333, 640), (1333, 800)])
    np.random.seed(7)
    first = [transform({"img": np.zeros((4, 4, 3), np.uint8)})["scale"] for _ in range(3)]
    np.random.seed(7)
    again = [transform({"img": np.zeros((4, 4, 3), np.uint8)})["scale"] for _ in range(3)]
    assert first == again


def test_resize_scale_sources() -> None:
    img = np.zeros((10, 20, 3), np.uint8)
    by_factor = Resize(keep_ratio=True)({"img": img, "scale_factor": 1.5})
    assert by_factor["scale"] == (30, 15) and by_factor["img_shape"] == (15, 30, 3)
    with pytest.raises(AssertionError, match="both set"):
        Resize(img_scale=(5, 5))({"img": img, "scale": (5, 5), "scale_factor": 2.0})
    twice = Resize(img_scale=(40, 40), override=True)(
        {"img": img, "scale": (5, 5), "scale_factor": np.ones(4, np.float32)}
    )
    assert twice["scale"] == (40, 40) and twice["img_shape"] == (20, 40, 3)
    with pytest.raises(ValueError, match="img_scale"):
        Resize()({"img": img})
    with pytest.raises(AssertionError):
        Resize(img_scale=(5, 5), multiscale_mode="random")
    with pytest.raises(AssertionError):
        Resize(img_scale=[(5, 5), (6, 6)], ratio_range=(0.5, 1.5))


def test_resize_boxes_round_trip() -> None:
    for seed, (scale, keep_ratio) in enumerate(
        [((1333, 800), True), ((100, 30), True), ((64, 200), False), ((13, 17), False)]
    ):
        results = _synthetic(seed)
        original = results["gt_bboxes"].copy()
        out = Resize(img_scale=scale, keep_ratio=keep_ratio)(results)
        _assert_boxes_ok(out)
        back = out["gt_bboxes"] / out["scale_factor"]
        np.testing.assert_allclose(back, original, rtol=1e-5, atol=1e-4)


def test_resize_clips_boxes_only_when_asked() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    boxes = np.array([[-5, -5, 15, 8]], np.float32)
    clipped = Resize(img_scale=(20, 20))(dict(img=img, gt_bboxes=boxes, bbox_fields=["gt_bboxes"]))
    assert clipped["gt_bboxes"].tolist() == [[0, 0, 20, 16]]
    loose = Resize(img_scale=(20, 20), bbox_clip_border=False)(
        dict(img=img, gt_bboxes=boxes, bbox_fields=["gt_bboxes"])
    )
    assert loose["gt_bboxes"].tolist() == [[-10, -10, 30, 16]]


@pytest.mark.parametrize("keep_ratio", [True, False])
def test_resize_masks_follow_image(keep_ratio: bool) -> None:
    results = _synthetic(1, with_masks=True)
    out = Resize(img_scale=(90, 60), keep_ratio=keep_ratio)(results)
    h, w = out["img_shape"][:2]
    assert (out["gt_masks"].height, out["gt_masks"].width) == (h, w)
    assert out["gt_masks"].masks.shape == (3, h, w)
    assert out["gt_semantic_seg"].shape == (h, w)


def test_resize_repr() -> None:
    assert repr(Resize(img_scale=(1333, 800), keep_ratio=True)) == (
        "Resize(img_scale=[(1333, 800)], multiscale_mode=range, ratio_range=None, "
        "keep_ratio=True, bbox_clip_border=True)"
    )


# ----------------------------------------------------------------------------- RandomFlip


def test_flip_ratio_validation() -> None:
    with pytest.raises(AssertionError):
        RandomFlip(flip_ratio=1.5)
    with pytest.raises(AssertionError):
        RandomFlip(flip_ratio=[0.7, 0.5], direction=["horizontal", "vertical"])
    with pytest.raises(AssertionError):
        RandomFlip(flip_ratio=[0.2], direction=["horizontal", "vertical"])
    with pytest.raises(AssertionError):
        RandomFlip(flip_ratio=0.5, direction="sideways")
    with pytest.raises(ValueError):
        RandomFlip(flip_ratio="0.5")  # type: ignore[arg-type]


def test_horizontal_flip_box_formula() -> None:
    results = dict(
        img=np.zeros((10, 20, 3), np.uint8),
        img_shape=(10, 20, 3),
        gt_bboxes=np.array([[2, 3, 7, 9]], np.float32),
        bbox_fields=["gt_bboxes"],
    )
    out = RandomFlip(flip_ratio=1.0)(results)
    assert out["flip"] is True and out["flip_direction"] == "horizontal"
    assert out["gt_bboxes"].tolist() == [[13, 3, 18, 9]]
    vertical = RandomFlip(flip_ratio=1.0, direction="vertical")(
        dict(
            img_shape=(10, 20, 3),
            img=np.zeros((10, 20)),
            gt_bboxes=np.array([[2, 3, 7, 9]], np.float32),
            bbox_fields=["gt_bboxes"],
        )
    )
    assert vertical["gt_bboxes"].tolist() == [[2, 1, 7, 7]]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_flip_twice_is_identity(direction: str) -> None:
    results = _synthetic(2, with_masks=True)
    before = copy.deepcopy(results)
    flip = RandomFlip(flip_ratio=1.0, direction=direction)
    once = flip(results)
    assert once["flip"] is True and once["flip_direction"] == direction
    assert not np.array_equal(once["img"], before["img"])
    _assert_boxes_ok(once)
    twice = flip(once)
    np.testing.assert_array_equal(twice["img"], before["img"])
    # w - (w - x) is exact up to float32 rounding
    np.testing.assert_allclose(twice["gt_bboxes"], before["gt_bboxes"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        twice["gt_bboxes_ignore"], before["gt_bboxes_ignore"], rtol=0, atol=1e-5
    )
    np.testing.assert_array_equal(twice["gt_masks"].masks, before["gt_masks"].masks)
    np.testing.assert_array_equal(twice["gt_semantic_seg"], before["gt_semantic_seg"])


def test_flip_probabilities() -> None:
    np.random.seed(0)
    flip = RandomFlip(flip_ratio=[0.3, 0.5], direction=["horizontal", "vertical"])
    counts = {"horizontal": 0, "vertical": 0, None: 0}
    for _ in range(2000):
        counts[
            flip({"img": np.zeros((2, 2, 3), np.uint8), "img_shape": (2, 2, 3)})["flip_direction"]
        ] += 1
    assert abs(counts["horizontal"] / 2000 - 0.3) < 0.05
    assert abs(counts["vertical"] / 2000 - 0.5) < 0.05
    never = RandomFlip(flip_ratio=0.0)({"img": np.zeros((2, 2, 3), np.uint8)})
    assert never["flip"] is False and never["flip_direction"] is None


def test_flip_respects_preset_decision() -> None:
    img = np.arange(6, dtype=np.uint8).reshape(1, 6, 1)
    out = RandomFlip()(
        {"img": img, "img_shape": img.shape, "flip": True, "flip_direction": "horizontal"}
    )
    assert out["img"].ravel().tolist() == [5, 4, 3, 2, 1, 0]
    kept = RandomFlip()({"img": img, "flip": False, "flip_direction": None})
    assert kept["img"] is img
    with pytest.raises(ValueError, match="flip_ratio"):
        RandomFlip()({"img": img})


def test_flip_repr() -> None:
    assert repr(RandomFlip(flip_ratio=0.5)) == "RandomFlip(flip_ratio=0.5)"


# ------------------------------------------------------------------------------------ Pad


def test_pad_size_divisor(mmdet_test_data: Path) -> None:
    results = Resize(img_scale=(1333, 800))(_color(mmdet_test_data))
    out = Pad(size_divisor=32)(results)
    h, w = out["img"].shape[:2]
    assert h % 32 == 0 and w % 32 == 0
    assert out["pad_shape"] == (768, 1344, 3) and out["img_shape"] == (750, 1333, 3)
    assert out["pad_size_divisor"] == 32 and out["pad_fixed_size"] is None
    assert (out["img"][750:] == 0).all() and (out["img"][:, 1333:] == 0).all()


def test_pad_to_square_and_fixed_size() -> None:
    out = Pad(pad_to_square=True)({"img": np.ones((30, 50, 3), np.uint8)})
    assert out["img"].shape == out["pad_shape"] == (50, 50, 3)
    fixed = Pad(size=(40, 60), pad_val=dict(img=7))({"img": np.ones((30, 50, 3), np.uint8)})
    assert fixed["img"].shape == (40, 60, 3) and fixed["img"][35, 55, 0] == 7


def test_pad_requires_a_mode() -> None:
    with pytest.raises(AssertionError):
        Pad()
    with pytest.raises(AssertionError):
        Pad(size=(10, 10), size_divisor=32)
    with pytest.raises(AssertionError):
        Pad(size=(10, 10), pad_to_square=True)


def test_pad_number_is_deprecated() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pad = Pad(size_divisor=8, pad_val=3)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert pad.pad_val == {"img": 3, "masks": 3, "seg": 255}


def test_pad_masks_and_seg() -> None:
    results = _synthetic(3, h=30, w=33, with_masks=True)
    out = Pad(size_divisor=16)(results)
    assert out["pad_shape"][:2] == (32, 48)
    assert out["gt_masks"].masks.shape == (3, 32, 48)
    assert out["gt_semantic_seg"].shape == (32, 48)
    assert (out["gt_semantic_seg"][30:] == 255).all()
    assert (out["gt_masks"].masks[:, :, 33:] == 0).all()
    _assert_boxes_ok(out)


def test_pad_repr() -> None:
    assert repr(Pad(size_divisor=32)) == (
        "Pad(size=None, size_divisor=32, pad_to_square=False, "
        "pad_val={'img': 0, 'masks': 0, 'seg': 255})"
    )


def test_chain_keeps_boxes_float32_and_inside() -> None:
    np.random.seed(11)
    results = _synthetic(4)
    for transform in (
        Resize(img_scale=[(200, 100), (300, 150)], multiscale_mode="range"),
        RandomFlip(flip_ratio=[0.3, 0.3, 0.3], direction=list(DIRECTIONS)),
        Pad(size_divisor=32),
    ):
        results = transform(results)
        _assert_boxes_ok(results)
