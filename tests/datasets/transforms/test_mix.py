"""Tests of ``Mosaic``, ``MixUp``, ``RandomAffine`` and ``CopyPaste``."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from detforge.datasets.transforms.mix import (
    CopyPaste,
    MixUp,
    Mosaic,
    RandomAffine,
    find_inside_bboxes,
)
from detforge.registry import DATASETS, TRANSFORMS, build_module
from detforge.structures.masks import BitmapMasks
from tests.datasets.transforms._helpers import check_invariants

Results = dict[str, Any]


def tile(h: int, w: int, label: int, seed: int = 0, n: int = 1) -> Results:
    """A sample with random pixels and ``n`` random boxes labelled ``label``."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [w - 4, h - 4], (n, 2))
    wh = rng.uniform(2, [w / 2, h / 2], (n, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], 1).astype(np.float32)
    return dict(
        img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        img_shape=(h, w, 3),
        bbox_fields=["gt_bboxes"],
        gt_bboxes=boxes,
        gt_labels=np.full(n, label, np.int64),
    )


# ----------------------------------------------------------------------------- Mosaic


def test_mosaic_places_four_tiles_around_a_fixed_center() -> None:
    tiles = [tile(32, 48, label=i, seed=i) for i in range(4)]
    r = copy.deepcopy(tiles[0])
    r["mix_results"] = copy.deepcopy(tiles[1:])
    out = Mosaic(img_scale=(32, 48), center_ratio_range=(1.0, 1.0))(r)
    assert out["img"].shape == (64, 96, 3) and out["img_shape"] == (64, 96, 3)
    offsets = [(0, 0), (48, 0), (0, 32), (48, 32)]
    for t, (x, y) in zip(tiles, offsets, strict=True):
        np.testing.assert_array_equal(out["img"][y : y + 32, x : x + 48], t["img"])
    expected = np.concatenate(
        [
            t["gt_bboxes"] + np.array([x, y, x, y], np.float32)
            for t, (x, y) in zip(tiles, offsets, strict=True)
        ]
    )
    np.testing.assert_allclose(out["gt_bboxes"], expected, atol=1e-5)
    assert out["gt_labels"].tolist() == [0, 1, 2, 3]
    assert out["gt_bboxes"].dtype == np.float32


def test_mosaic_properties_over_seeds() -> None:
    for seed in range(8):
        np.random.seed(seed)
        sizes = [(40, 30), (20, 70), (64, 64), (33, 17)]
        tiles = [tile(h, w, label=i, seed=seed * 4 + i, n=3) for i, (h, w) in enumerate(sizes)]
        r = tiles[0]
        r["mix_results"] = tiles[1:]
        out = Mosaic(img_scale=(32, 40), pad_val=7)(r)
        assert out["img"].shape == (64, 80, 3)
        check_invariants(out, masks=False, seg=False)
        assert set(out["gt_labels"].tolist()) <= {0, 1, 2, 3}
        assert len(out["gt_bboxes"]) <= 12
        assert (out["img"] == 7).all(-1).any()  # tiles of other aspect ratios leave padding


def test_mosaic_filter_prob_and_errors() -> None:
    tiles = [tile(32, 32, label=i, seed=i) for i in range(4)]
    for t in tiles:
        t["gt_bboxes"] = np.array([[0, 0, 1, 1], [2, 2, 20, 20]], np.float32)
        t["gt_labels"] = np.array([0, 1], np.int64)
    r = copy.deepcopy(tiles[0])
    r["mix_results"] = copy.deepcopy(tiles[1:])
    out = Mosaic(img_scale=(32, 32), center_ratio_range=(1, 1), min_bbox_size=2, skip_filter=False)(
        r
    )
    assert out["gt_labels"].tolist() == [1, 1, 1, 1]
    r = copy.deepcopy(tiles[0])
    r["mix_results"] = tiles[1:]
    assert Mosaic(prob=0.0)(r)["img"].shape == (32, 32, 3)
    with pytest.raises(KeyError, match="mix_results"):
        Mosaic()(copy.deepcopy(tiles[0]))
    r["mix_results"] = tiles[1:3]
    with pytest.raises(ValueError, match="3 extra"):
        Mosaic()(r)
    with pytest.raises(AssertionError):
        Mosaic(img_scale=[640, 640])
    with pytest.raises(AssertionError):
        Mosaic(prob=2.0)


def test_mosaic_get_indexes_and_repr() -> None:
    np.random.seed(3)
    indexes = Mosaic().get_indexes(list(range(10)))
    np.random.seed(3)
    assert indexes == [np.random.randint(0, 10) for _ in range(3)]
    assert repr(Mosaic()) == (
        "Mosaic(img_scale=(640, 640), center_ratio_range=(0.5, 1.5), pad_val=114, "
        "min_bbox_size=0, skip_filter=True, prob=1.0)"
    )


# ----------------------------------------------------------------------------- MixUp


def _mixup_pair(other_img: np.ndarray) -> Results:
    r: Results = dict(
        img=np.full((8, 8, 3), 100, np.uint8),
        gt_bboxes=np.array([[1, 1, 3, 3]], np.float32),
        gt_labels=np.array([5], np.int64),
    )
    r["mix_results"] = [
        dict(
            img=other_img,
            gt_bboxes=np.array([[0, 0, 4, 4]], np.float32),
            gt_labels=np.array([2], np.int64),
        )
    ]
    return r


def test_mixup_blends_half_and_half() -> None:
    np.random.seed(0)
    r = _mixup_pair(np.full((8, 8, 3), 200, np.uint8))
    out = MixUp(img_scale=(8, 8), ratio_range=(1, 1), flip_ratio=1.0)(r)
    assert (out["img"] == 150).all() and out["img"].dtype == np.uint8
    assert out["gt_bboxes"].tolist() == [[1, 1, 3, 3], [0, 0, 4, 4]]
    assert out["gt_labels"].tolist() == [5, 2]
    assert out["gt_bboxes"].dtype == np.float32


def test_mixup_flip_when_draw_exceeds_flip_ratio() -> None:
    other = np.tile(np.arange(8, dtype=np.uint8)[None, :, None] * 20, (8, 1, 3))
    np.random.seed(0)
    out = MixUp(img_scale=(8, 8), ratio_range=(1, 1), flip_ratio=0.0)(_mixup_pair(other))
    expected = (0.5 * 100 + 0.5 * other[:, ::-1].astype(np.float32)).astype(np.uint8)
    np.testing.assert_array_equal(out["img"], expected)
    assert out["gt_bboxes"].tolist()[1] == [4, 0, 8, 4]


def test_mixup_jitters_on_a_float_canvas_with_a_float_pad_value_as_v2() -> None:
    """v2 builds the canvas as ``ones(uint8) * pad_val``: float64 for ``pad_val=114.0`` (YOLOX's
    configs), so the scale-jittered pixels are truncated, not rounded, back to uint8."""
    other = np.tile(np.array([0, 255, 0, 255], np.uint8)[None, :, None], (4, 1, 3))
    for pad_val, pixel in ((114.0, 31), (114, 32)):  # jittered x2: 63.75 -> 63 or 64
        r = {"img": np.zeros((8, 8, 3), np.uint8), "gt_bboxes": np.zeros((0, 4), np.float32),
             "gt_labels": np.zeros(0, np.int64)}  # fmt: skip
        r["mix_results"] = [
            {"img": other, "gt_bboxes": np.array([[0, 0, 2, 2]], np.float32),
             "gt_labels": np.array([1])}
        ]  # fmt: skip
        mix = MixUp(img_scale=(4, 4), ratio_range=(2, 2), flip_ratio=1.0, pad_val=pad_val)
        out = mix(r)
        assert int(out["img"][0, 1, 0]) == pixel, pad_val
        assert out["gt_bboxes"].tolist() == [[0, 0, 4, 4]]


def test_mixup_properties_and_empty_other() -> None:
    for seed in range(8):
        np.random.seed(seed)
        r = tile(50, 70, label=0, seed=seed, n=3)
        r["mix_results"] = [tile(90, 40, label=1, seed=seed + 100, n=4)]
        out = MixUp(img_scale=(64, 64))(r)
        assert out["img"].shape == (50, 70, 3)
        check_invariants(out, masks=False, seg=False)
        assert out["gt_labels"][:3].tolist() == [0, 0, 0]
    r = tile(20, 20, label=0)
    r["mix_results"] = [
        dict(
            img=np.zeros((20, 20, 3), np.uint8),
            gt_bboxes=np.zeros((0, 4), np.float32),
            gt_labels=np.zeros(0),
        )
    ]
    src = copy.deepcopy(r)
    out = MixUp()(r)
    np.testing.assert_array_equal(out["img"], src["img"])


def test_mixup_filter_removes_squashed_boxes() -> None:
    np.random.seed(0)
    r = _mixup_pair(np.full((8, 8, 3), 200, np.uint8))
    r["mix_results"][0]["gt_bboxes"] = np.array([[0, 0, 4, 4], [0, 0, 1, 6]], np.float32)
    r["mix_results"][0]["gt_labels"] = np.array([2, 3], np.int64)
    out = MixUp(
        img_scale=(8, 8), ratio_range=(1, 1), flip_ratio=1.0, min_bbox_size=2, skip_filter=False
    )(r)
    assert out["gt_labels"].tolist() == [5, 2]


class _ToyDataset:
    """Four samples; sample i has i boxes (so sample 0 has none)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, idx: int) -> Results:
        r = tile(24, 24, label=idx, seed=idx, n=max(idx, 1))
        if idx == 0:
            r["gt_bboxes"] = np.zeros((0, 4), np.float32)
            r["gt_labels"] = np.zeros(0, np.int64)
        return r

    def get_ann_info(self, idx: int) -> dict[str, np.ndarray]:
        return {"bboxes": self[idx]["gt_bboxes"]}


def test_mixup_get_indexes_skips_samples_without_boxes_and_repr() -> None:
    for seed in range(10):
        np.random.seed(seed)
        index = MixUp().get_indexes(_ToyDataset())
        assert 0 <= index < 4
        np.random.seed(seed)
        draws = [np.random.randint(0, 4) for _ in range(15)]
        assert index == next((d for d in draws if d != 0), draws[-1])
    assert repr(MixUp()) == (
        "MixUp(dynamic_scale=(640, 640), ratio_range=(0.5, 1.5), flip_ratio=0.5, pad_val=114, "
        "max_iters=15, min_bbox_size=5, min_area_ratio=0.2, max_aspect_ratio=20, "
        "skip_filter=True)"
    )


def test_mosaic_and_mixup_inside_multi_image_mix_dataset() -> None:
    if "MultiImageMixDataset" not in DATASETS:
        pytest.skip("MultiImageMixDataset is not registered")
    dataset = build_module(
        dict(
            type="MultiImageMixDataset",
            dataset=_ToyDataset(),
            pipeline=[
                dict(type="Mosaic", img_scale=(24, 24)),
                dict(type="RandomAffine", border=(-12, -12)),
                dict(type="MixUp", img_scale=(24, 24)),
            ],
        ),
        DATASETS,
    )
    for seed in range(4):
        np.random.seed(seed)
        out = dataset[seed]
        assert out["img"].shape == (24, 24, 3) and "mix_results" not in out
        check_invariants(out, masks=False, seg=False)


# ----------------------------------------------------------------------------- RandomAffine


def test_random_affine_identity_and_pure_scaling() -> None:
    r = tile(30, 40, label=1, n=3)
    src = copy.deepcopy(r)
    ident = RandomAffine(
        max_rotate_degree=0, max_translate_ratio=0, scaling_ratio_range=(1, 1), max_shear_degree=0
    )
    out = ident(r)
    np.testing.assert_array_equal(out["img"], src["img"])
    np.testing.assert_allclose(out["gt_bboxes"], src["gt_bboxes"], atol=1e-4)
    img = np.zeros((40, 40, 3), np.uint8)
    img[10:20, 4:12] = 255
    r = dict(
        img=img,
        bbox_fields=["gt_bboxes"],
        gt_bboxes=np.array([[4, 10, 12, 20]], np.float32),
        gt_labels=np.array([0]),
    )
    scale = RandomAffine(
        max_rotate_degree=0,
        max_translate_ratio=0,
        scaling_ratio_range=(1.5, 1.5),
        max_shear_degree=0,
        border=(5, 5),
    )
    out = scale(r)
    assert out["img"].shape == (50, 50, 3)
    np.testing.assert_allclose(out["gt_bboxes"], [[6, 15, 18, 30]], atol=1e-4)
    ys, xs = np.nonzero(out["img"][..., 0] > 127)
    assert abs(xs.min() - 6) <= 1 and abs(xs.max() + 1 - 18) <= 1
    assert abs(ys.min() - 15) <= 1 and abs(ys.max() + 1 - 30) <= 1


def test_random_affine_properties_filter_and_errors() -> None:
    for seed in range(8):
        np.random.seed(seed)
        r = tile(48, 64, label=2, seed=seed, n=5)
        r["gt_labels"] = np.arange(5, dtype=np.int64)
        out = RandomAffine(max_rotate_degree=30, max_shear_degree=10, skip_filter=seed % 2 == 0)(r)
        check_invariants(out, masks=False, seg=False)
        assert out["img"].shape == (48, 64, 3)
        assert np.unique(out["gt_labels"]).size == len(out["gt_labels"])
    r = tile(40, 40, label=0)
    r["gt_bboxes"] = np.array([[0, 0, 1, 1], [5, 5, 30, 30]], np.float32)
    r["gt_labels"] = np.array([0, 1], np.int64)
    np.random.seed(0)
    out = RandomAffine(
        max_rotate_degree=0,
        max_translate_ratio=0,
        scaling_ratio_range=(1, 1),
        max_shear_degree=0,
        skip_filter=False,
    )(r)
    assert out["gt_labels"].tolist() == [1]
    r = tile(40, 40, label=0)
    r["gt_masks"] = BitmapMasks(np.zeros((1, 40, 40), np.uint8), 40, 40)
    with pytest.raises(NotImplementedError):
        RandomAffine()(r)
    with pytest.raises(AssertionError):
        RandomAffine(max_translate_ratio=2)
    with pytest.raises(AssertionError):
        RandomAffine(scaling_ratio_range=(2, 1))
    assert repr(RandomAffine()) == (
        "RandomAffine(max_rotate_degree=10.0, max_translate_ratio=0.1, scaling_ratio=(0.5, 1.5), "
        "max_shear_degree=2.0, border=(0, 0), border_val=(114, 114, 114), min_bbox_size=2, "
        "min_area_ratio=0.2, max_aspect_ratio=20, skip_filter=True)"
    )


def test_find_inside_bboxes() -> None:
    boxes = np.array([[-5, -5, 0, 3], [-5, 2, 1, 3], [9, 9, 12, 12], [10, 0, 12, 3]], np.float32)
    assert find_inside_bboxes(boxes, 10, 10).tolist() == [False, True, True, False]


# ----------------------------------------------------------------------------- CopyPaste


def _masked_sample(box: tuple[int, int, int, int], label: int, value: int) -> Results:
    x1, y1, x2, y2 = box
    m = np.zeros((1, 30, 30), np.uint8)
    m[0, y1:y2, x1:x2] = 1
    return dict(
        img=np.full((30, 30, 3), value, np.uint8),
        gt_bboxes=np.array([box], np.float32),
        gt_labels=np.array([label], np.int64),
        gt_masks=BitmapMasks(m, 30, 30),
    )


def test_copy_paste_occludes_updates_and_appends() -> None:
    dst = _masked_sample((0, 0, 20, 20), label=1, value=10)
    src = _masked_sample((10, 0, 30, 20), label=2, value=200)
    dst["mix_results"] = [src]
    out = CopyPaste(selected=False, bbox_occluded_thr=5, mask_occluded_thr=50)(dst)
    assert out["img"].dtype == np.uint8
    assert (out["img"][0:20, 10:30] == 200).all() and (out["img"][0:20, 0:10] == 10).all()
    assert out["gt_labels"].tolist() == [1, 2]
    assert out["gt_bboxes"].tolist() == [[0, 0, 10, 20], [10, 0, 30, 20]]
    assert out["gt_masks"].masks[0, :, 10:].sum() == 0 and len(out["gt_masks"]) == 2
    dst = _masked_sample((12, 2, 18, 8), label=1, value=10)  # fully covered: dropped
    dst["mix_results"] = [_masked_sample((10, 0, 30, 20), label=2, value=200)]
    out = CopyPaste(selected=False)(dst)
    assert out["gt_labels"].tolist() == [2]


@pytest.mark.parametrize("without", [("dst", "src"), ("src",), ("dst",)])
def test_copy_paste_box_only_mode_as_v2(without: tuple[str, ...]) -> None:
    """v2.28: a sample without gt_masks uses a mask filling each box; no gt_masks come out."""
    dst = _masked_sample((0, 0, 20, 20), label=1, value=10)
    src = _masked_sample((10, 0, 30, 20), label=2, value=200)
    for name in without:
        del {"dst": dst, "src": src}[name]["gt_masks"]
    dst["mix_results"] = [src]
    out = CopyPaste(selected=False, bbox_occluded_thr=5, mask_occluded_thr=50)(dst)
    assert "gt_masks" not in out
    assert (out["img"][0:20, 10:30] == 200).all() and (out["img"][0:20, 0:10] == 10).all()
    assert out["gt_labels"].tolist() == [1, 2]
    assert out["gt_bboxes"].tolist() == [[0, 0, 10, 20], [10, 0, 30, 20]]
    np.random.seed(0)  # selected: nothing or something pasted, still no masks
    dst = _masked_sample((0, 0, 20, 20), label=1, value=10)
    del dst["gt_masks"]
    dst["mix_results"] = [_masked_sample((10, 0, 30, 20), label=2, value=200)]
    assert "gt_masks" not in CopyPaste()(dst)


def test_copy_paste_selection_get_indexes_and_repr() -> None:
    for seed in range(5):
        np.random.seed(seed)
        dst = _masked_sample((0, 0, 5, 5), label=1, value=10)
        dst["mix_results"] = [_masked_sample((20, 20, 30, 30), label=2, value=200)]
        out = CopyPaste()(dst)
        assert len(out["gt_bboxes"]) == len(out["gt_labels"]) == len(out["gt_masks"])
        assert out["gt_labels"][0] == 1
    np.random.seed(1)
    index = CopyPaste().get_indexes(list(range(7)))
    np.random.seed(1)
    assert index == np.random.randint(0, 7)
    assert repr(CopyPaste()) == (
        "CopyPaste(max_num_pasted=100, bbox_occluded_thr=10, mask_occluded_thr=300, selected=True)"
    )


def test_registered_names() -> None:
    for name in ("Mosaic", "MixUp", "RandomAffine", "CopyPaste"):
        assert name in TRANSFORMS
