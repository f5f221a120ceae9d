"""Tests for DetResult: exact v2 round trips, masks and RLE, filtering and ordering."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.structures import DetResult, encode_mask_results


def _v2_boxes(seed: int = 0, counts: tuple[int, ...] = (2, 0, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for n in counts:
        xy = rng.uniform(0, 50, (n, 2))
        wh = rng.uniform(1, 20, (n, 2))
        scores = rng.uniform(0, 1, (n, 1))
        out.append(np.concatenate([xy, xy + wh, scores], axis=1).astype(np.float32))
    return out


def _v2_masks(counts: tuple[int, ...], h: int = 12, w: int = 10) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(7)
    return [[rng.random((h, w)) > 0.5 for _ in range(n)] for n in counts]


def _assert_same_v2(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype == np.float32
        assert np.array_equal(x, y)


def test_boxes_only_round_trip() -> None:
    v2 = _v2_boxes()
    res = DetResult.from_v2(v2)
    assert len(res) == 5
    assert res.boxes.dtype == np.float32 and res.boxes.shape == (5, 4)
    assert res.scores.dtype == np.float32 and res.labels.dtype == np.int64
    assert res.labels.tolist() == [0, 0, 2, 2, 2]
    assert res.masks is None
    back = res.to_v2(num_classes=3)
    assert isinstance(back, list)
    _assert_same_v2(back, v2)


def test_round_trip_after_sorting_keeps_per_class_content() -> None:
    v2 = _v2_boxes(1, (4, 3))
    res = DetResult.from_v2(v2).sorted()
    assert np.all(np.diff(res.scores) <= 0)
    back = res.to_v2(2)
    assert isinstance(back, list)
    for x, y in zip(back, v2, strict=True):
        order = np.argsort(-y[:, 4], kind="stable")
        assert np.array_equal(x, y[order])


def test_masks_round_trip() -> None:
    counts = (1, 0, 2)
    v2 = (_v2_boxes(2, counts), _v2_masks(counts))
    res = DetResult.from_v2(v2)
    assert res.masks is not None and res.masks.shape == (3, 12, 10) and res.masks.dtype == bool
    back = res.to_v2(3)
    assert isinstance(back, tuple)
    bbox_back, segm_back = back
    _assert_same_v2(bbox_back, v2[0])
    assert [len(c) for c in segm_back] == list(counts)
    for got_cls, want_cls in zip(segm_back, v2[1], strict=True):
        for got, want in zip(got_cls, want_cls, strict=True):
            assert got.dtype == bool and np.array_equal(got, want)


def test_rle_and_mask_scoring_inputs() -> None:
    counts = (2, 1)
    masks = _v2_masks(counts, 9, 11)
    rles = encode_mask_results(masks)
    res = DetResult.from_v2((_v2_boxes(3, counts), rles))
    assert res.masks is not None
    assert np.array_equal(res.masks, np.stack([m for c in masks for m in c]))
    scored = DetResult.from_v2((_v2_boxes(3, counts), (masks, [[0.1, 0.2], [0.3]])))
    assert scored.masks is not None and np.array_equal(scored.masks, res.masks)


def test_empty_results() -> None:
    v2 = [np.zeros((0, 5), np.float32) for _ in range(4)]
    res = DetResult.from_v2(v2)
    assert len(res) == 0 and res.boxes.shape == (0, 4)
    _assert_same_v2(res.to_v2(4), v2)  # type: ignore[arg-type]
    with_masks = DetResult.from_v2((v2, [[] for _ in range(4)]))
    assert with_masks.masks is not None and len(with_masks.masks) == 0
    back = with_masks.to_v2(4)
    assert isinstance(back, tuple) and back[1] == [[], [], [], []]


def test_above_sorted_and_indexing() -> None:
    res = DetResult(
        boxes=np.arange(16, dtype=np.float64).reshape(4, 4),
        scores=[0.2, 0.9, 0.5, 0.9],
        labels=[1, 0, 1, 2],
    )
    assert res.boxes.dtype == np.float32
    kept = res.above(0.5)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.9])  # strict: 0.5 is dropped
    assert kept.labels.tolist() == [0, 2]
    ordered = res.sorted()
    assert ordered.labels.tolist() == [0, 2, 1, 1]  # ties keep their order
    assert len(res[1]) == 1 and res[1].labels.tolist() == [0]
    assert len(res[1:3]) == 2


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="scores"):
        DetResult(boxes=np.zeros((2, 4)), scores=np.zeros(3), labels=np.zeros(2))
    with pytest.raises(ValueError, match="masks"):
        DetResult(
            boxes=np.zeros((2, 4)),
            scores=np.zeros(2),
            labels=np.zeros(2),
            masks=np.zeros((1, 3, 3)),
        )
    res = DetResult(boxes=np.zeros((1, 4)), scores=np.ones(1), labels=np.array([5]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        res.to_v2(3)
    with pytest.raises(TypeError, match="list over classes"):
        DetResult.from_v2(np.zeros((3, 5)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="class 1"):
        DetResult.from_v2([np.zeros((0, 5), np.float32), np.zeros((2, 4), np.float32)])
    counts = (1, 2)
    with pytest.raises(ValueError, match="class 1 has 2 boxes but 1 masks"):
        DetResult.from_v2((_v2_boxes(0, counts), _v2_masks((1, 1))))
