"""Tests for DetResult: exact v2 round trips, masks and RLE, filtering and ordering."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.structures import DetResult, encode_mask_results
from detforge.structures.det_result import json_float, result_to_detections, split_v2_result
from detforge.structures.masks import rle_encode


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


def test_tensor_masks_are_converted() -> None:
    torch = pytest.importorskip("torch")
    counts = (2, 1)
    masks = _v2_masks(counts, 9, 11)
    tensors = [[torch.from_numpy(m) for m in per_cls] for per_cls in masks]
    res = DetResult.from_v2((_v2_boxes(3, counts), tensors))
    assert res.masks is not None and res.masks.dtype == bool
    assert np.array_equal(res.masks, np.stack([m for c in masks for m in c]))


def test_empty_results() -> None:
    v2 = [np.zeros((0, 5), np.float32) for _ in range(4)]
    res = DetResult.from_v2(v2)
    assert len(res) == 0 and res.boxes.shape == (0, 4)
    _assert_same_v2(res.to_v2(4), v2)  # type: ignore[arg-type]
    with_masks = DetResult.from_v2((v2, [[] for _ in range(4)]))
    assert with_masks.masks is not None and len(with_masks.masks) == 0
    back = with_masks.to_v2(4)
    assert isinstance(back, tuple) and back[1] == [[], [], [], []]


def _v2_shapes() -> dict[str, object]:
    """One image's detections (class 1 empty) in every v2 result shape."""
    counts = (2, 0, 1)
    boxes = _v2_boxes(4, counts)
    masks = _v2_masks(counts)
    return {
        "bbox": boxes,
        "bbox+segm": (boxes, masks),
        "bbox+rle": (boxes, encode_mask_results(masks)),
        "bbox+rle-str": (boxes, [[rle_encode(m, str_counts=True) for m in c] for c in masks]),
        "bbox+(segm, scores)": (boxes, (masks, [[0.3, 0.2], [], [0.1]])),
    }


@pytest.mark.parametrize("shape", list(_v2_shapes()))
def test_split_v2_result_gives_the_parts_as_they_are(shape: str) -> None:
    result = _v2_shapes()[shape]
    bbox, segm = split_v2_result(result)  # type: ignore[arg-type]
    if shape == "bbox":
        assert bbox is result and segm is None
    else:
        assert isinstance(result, tuple)
        assert bbox is result[0] and segm is result[1]  # nothing copied, scores kept


def test_split_v2_result_rejects_other_tuples() -> None:
    boxes = [np.zeros((0, 5), np.float32)]
    with pytest.raises(TypeError, match="got 3 items"):
        split_v2_result((boxes, [[]], [[]]))
    with pytest.raises(TypeError, match="got 3 items"):
        DetResult.from_v2((boxes, [[]], [[]]))  # type: ignore[arg-type]


def test_from_v2_reads_every_shape_alike() -> None:
    shapes = _v2_shapes()
    plain = DetResult.from_v2(shapes.pop("bbox"))  # type: ignore[arg-type]
    assert plain.labels.tolist() == [0, 0, 2] and plain.masks is None
    want = np.concatenate(_v2_shapes()["bbox"])  # type: ignore[arg-type]
    assert plain.det_bboxes.dtype == np.float32 and np.array_equal(plain.det_bboxes, want)
    masks = np.stack([m for c in _v2_masks((2, 0, 1)) for m in c])
    for name, result in shapes.items():
        got = DetResult.from_v2(result)  # type: ignore[arg-type]
        assert np.array_equal(got.det_bboxes, want), name
        assert np.array_equal(got.labels, plain.labels), name
        assert got.masks is not None and np.array_equal(got.masks, masks), name


def test_from_v2_of_all_empty_classes_in_every_shape() -> None:
    boxes = [np.zeros((0, 5), np.float32) for _ in range(3)]
    for result in (boxes, (boxes, [[], [], []]), (boxes, ([[], [], []], [[], [], []]))):
        got = DetResult.from_v2(result)  # type: ignore[arg-type]
        assert len(got) == 0 and got.det_bboxes.shape == (0, 5)
        assert (got.masks is None) == (result is boxes)


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


def _three_classes() -> list[np.ndarray]:
    return [
        np.array([[10, 10, 40, 30, 0.9], [0, 0, 5, 5, 0.1]], np.float32),
        np.zeros((0, 5), np.float32),
        np.array([[20.3, 5, 60, 50, 0.5]], np.float32),
    ]


def test_json_float_is_float32_shortest_decimal() -> None:
    values = np.random.default_rng(0).uniform(-1e4, 1e4, 1000).astype(np.float32)
    values = np.concatenate([values, values * 1e-6, np.float32([0, 1, 0.9, 1e-30])])
    back = np.array([json_float(v) for v in values])
    assert np.array_equal(back.astype(np.float32), values)  # nothing lost
    assert json_float(np.float32(0.9)) == 0.9 != float(np.float32(0.9))
    assert json_float(np.float32(0.1)) == 0.1 and json_float(np.float32(12.5)) == 12.5


def test_result_to_detections_sorted_thresholded_and_rounded() -> None:
    dets = result_to_detections(_three_classes(), ["a", "b", "c"], score_thr=0.1)
    assert dets == [
        {"bbox": [10.0, 10.0, 40.0, 30.0], "score": 0.9, "label": 0, "class": "a"},
        {"bbox": [20.3, 5.0, 60.0, 50.0], "score": 0.5, "label": 2, "class": "c"},
    ]  # 0.1 is not above 0.1; 0.9 and 20.3, not float32 noise (0.8999999761581421)
    assert [d["score"] for d in result_to_detections(_three_classes(), ["a"])] == [0.9, 0.5, 0.1]
    assert result_to_detections(_three_classes(), ["a"])[1]["class"] == "class 2"
    assert result_to_detections([np.zeros((0, 5), np.float32)], ["a"]) == []


def test_result_to_detections_inclusive_and_in_class_order() -> None:
    """v2's TorchServe handler: ``score >= thr``, class by class."""
    dets = result_to_detections(
        _three_classes(), ["a", "b", "c"], score_thr=0.1, strict=False, by_score=False
    )
    assert [(d["label"], d["score"]) for d in dets] == [(0, 0.9), (0, 0.1), (2, 0.5)]
    ordered = result_to_detections(_three_classes(), ["a", "b", "c"], score_thr=0.5)
    assert [d["score"] for d in ordered] == [0.9]


def test_result_to_detections_of_mask_results() -> None:
    """Masks are not decoded (nor needed): RLE, arrays and mask scoring give the same."""
    counts = (2, 0, 1)
    masks = _v2_masks(counts, 9, 11)
    boxes = _three_classes()
    plain = result_to_detections(boxes, ["a", "b", "c"])
    assert result_to_detections((boxes, masks), ["a", "b", "c"]) == plain
    assert result_to_detections((boxes, encode_mask_results(masks)), ["a", "b", "c"]) == plain
    scored = (boxes, (masks, [[0.1, 0.2], [], [0.3]]))
    assert result_to_detections(scored, ["a", "b", "c"]) == plain
