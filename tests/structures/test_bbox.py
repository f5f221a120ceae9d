"""Tests for detforge.structures.bbox: overlaps against a slow loop, literals, properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from detforge.structures import bbox as B

BOXES1 = torch.tensor([[0, 0, 10, 10], [10, 10, 20, 20], [32, 32, 38, 42]], dtype=torch.float32)
BOXES2 = torch.tensor([[0, 0, 10, 20], [0, 10, 10, 19], [10, 10, 20, 20]], dtype=torch.float32)


def _random_boxes(gen: torch.Generator, n: int, size: float = 50.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * size
    wh = torch.rand(n, 2, generator=gen) * size / 2
    return torch.cat([xy, xy + wh], dim=1)


def _slow_overlap(a: list[float], b: list[float], mode: str, eps: float = 1e-6) -> float:
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = area_a if mode == "iof" else area_a + area_b - inter
    union = max(union, eps)
    iou = inter / union
    if mode != "giou":
        return iou
    ew = max(max(a[2], b[2]) - min(a[0], b[0]), 0.0)
    eh = max(max(a[3], b[3]) - min(a[1], b[1]), 0.0)
    enclose = max(ew * eh, eps)
    return iou - (enclose - union) / enclose


# ----------------------------------------------------------------------------- overlaps


def test_giou_literal_values() -> None:
    """mmdet-v2.md §8.3 item 4."""
    gious = B.bbox_overlaps(BOXES1, BOXES2, mode="giou", is_aligned=True)
    assert torch.allclose(gious, torch.tensor([0.5000, -0.0500, -0.8214]), atol=1e-4)
    ious = B.bbox_overlaps(BOXES1, BOXES2, mode="iou", is_aligned=True)
    assert torch.allclose(ious, torch.tensor([0.5, 0.0, 0.0]))
    iofs = B.bbox_overlaps(BOXES1, BOXES2, mode="iof", is_aligned=True)
    assert torch.allclose(iofs, torch.tensor([1.0, 0.0, 0.0]))
    full = B.bbox_overlaps(BOXES1, BOXES2)
    assert full.shape == (3, 3)
    assert torch.allclose(full[1], torch.tensor([0.0, 0.0, 1.0]))


@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
@pytest.mark.parametrize("aligned", [False, True])
def test_bbox_overlaps_vs_slow_loop(mode: str, aligned: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    a = _random_boxes(gen, 12)
    b = _random_boxes(gen, 12 if aligned else 9)
    # include a degenerate (zero-area) box and an identical pair
    a[0] = torch.tensor([5.0, 5.0, 5.0, 9.0])
    b[1] = a[1]
    out = B.bbox_overlaps(a, b, mode=mode, is_aligned=aligned)
    al, bl = a.tolist(), b.tolist()
    if aligned:
        ref = torch.tensor([_slow_overlap(x, y, mode) for x, y in zip(al, bl, strict=True)])
    else:
        ref = torch.tensor([[_slow_overlap(x, y, mode) for y in bl] for x in al])
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)
    if mode == "iou":
        assert torch.all((out >= 0) & (out <= 1))
    if mode == "giou":
        assert torch.all((out >= -1) & (out <= 1))


@pytest.mark.parametrize(
    ("n", "m", "aligned", "shape"),
    [
        (0, 1, False, (0, 1)),
        (1, 0, False, (1, 0)),
        (0, 0, False, (0, 0)),
        (0, 0, True, (0,)),
    ],
)
@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
def test_empty_shapes(n: int, m: int, aligned: bool, shape: tuple[int, ...], mode: str) -> None:
    out = B.bbox_overlaps(torch.rand(n, 4), torch.rand(m, 4), mode=mode, is_aligned=aligned)
    assert tuple(out.shape) == shape
    assert out.dtype == torch.float32


def test_batched_shapes_and_values() -> None:
    gen = torch.Generator().manual_seed(5)
    a = _random_boxes(gen, 2 * 3 * 4).reshape(2, 3, 4, 4)
    b = _random_boxes(gen, 2 * 3 * 5).reshape(2, 3, 5, 4)
    out = B.bbox_overlaps(a, b, mode="giou")
    assert out.shape == (2, 3, 4, 5)
    for i, j in itertools.product(range(2), range(3)):
        assert torch.allclose(out[i, j], B.bbox_overlaps(a[i, j], b[i, j], mode="giou"))
    aligned = B.bbox_overlaps(a, a.flip(-2), is_aligned=True)
    assert aligned.shape == (2, 3, 4)
    assert B.bbox_overlaps(torch.rand(1, 0, 4), b[0, :1], mode="giou").shape == (1, 0, 5)
    assert B.bbox_overlaps(b[0, :1], torch.rand(1, 0, 4)).shape == (1, 5, 0)
    assert B.bbox_overlaps(torch.rand(2, 0, 4), torch.rand(2, 0, 4), is_aligned=True).shape == (
        2,
        0,
    )


def test_bbox_overlaps_errors_and_numpy() -> None:
    with pytest.raises(ValueError, match="mode"):
        B.bbox_overlaps(BOXES1, BOXES2, mode="dice")
    with pytest.raises(ValueError, match="batch"):
        B.bbox_overlaps(BOXES1[None].repeat(2, 1, 1), BOXES2[None].repeat(3, 1, 1))
    with pytest.raises(ValueError, match="is_aligned"):
        B.bbox_overlaps(BOXES1, BOXES2[:2], is_aligned=True)
    with pytest.raises(ValueError, match="last dimension"):
        B.bbox_overlaps(torch.rand(3, 5), BOXES2)
    out = B.bbox_overlaps(BOXES1.numpy(), BOXES2.numpy(), mode="giou", is_aligned=True)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [0.5, -0.05, -0.8214], atol=1e-4)


# ------------------------------------------------------------------- conversions / geometry


@pytest.mark.parametrize("as_tensor", [False, True])
def test_conversions_round_trip(as_tensor: bool) -> None:
    boxes = np.array([[1.0, 2.0, 4.0, 8.0], [0.0, 0.0, 0.5, 3.0]], np.float32)
    x = torch.from_numpy(boxes) if as_tensor else boxes
    xywh = B.bbox_xyxy_to_xywh(x)
    assert type(xywh) is type(x)
    assert np.allclose(np.asarray(xywh), [[1, 2, 3, 6], [0, 0, 0.5, 3]])
    assert np.allclose(np.asarray(B.bbox_xywh_to_xyxy(xywh)), boxes)
    cxcywh = B.bbox_xyxy_to_cxcywh(x)
    assert np.allclose(np.asarray(cxcywh), [[2.5, 5, 3, 6], [0.25, 1.5, 0.5, 3]])
    assert np.allclose(np.asarray(B.bbox_cxcywh_to_xyxy(cxcywh)), boxes)


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_bbox_flip_twice_is_identity(direction: str, as_tensor: bool) -> None:
    boxes = np.random.default_rng(1).uniform(0, 30, (6, 8)).astype(np.float32)
    x = torch.from_numpy(boxes) if as_tensor else boxes
    once = B.bbox_flip(x, (40, 50, 3), direction)
    assert not np.allclose(np.asarray(once), boxes)
    assert np.allclose(np.asarray(B.bbox_flip(once, (40, 50), direction)), boxes)
    assert np.array_equal(np.asarray(x), boxes)  # input untouched


def test_bbox_flip_values() -> None:
    box = np.array([[1.0, 2.0, 3.0, 5.0]])
    assert B.bbox_flip(box, (10, 20), "horizontal").tolist() == [[17.0, 2.0, 19.0, 5.0]]
    assert B.bbox_flip(box, (10, 20), "vertical").tolist() == [[1.0, 5.0, 3.0, 8.0]]
    with pytest.raises(ValueError, match="direction"):
        B.bbox_flip(box, (10, 20), "up")
    with pytest.raises(ValueError, match="multiple of 4"):
        B.bbox_flip(np.zeros((1, 5)), (10, 20))


def test_bbox_clip_and_rescale() -> None:
    boxes = torch.tensor([[-3.0, 2.0, 30.0, 12.0]])
    assert B.bbox_clip(boxes, (10, 20)).tolist() == [[0.0, 2.0, 20.0, 10.0]]
    assert B.bbox_clip(boxes.numpy(), (10, 20)).tolist() == [[0.0, 2.0, 20.0, 10.0]]
    rescaled = B.bbox_rescale(torch.tensor([[2.0, 2.0, 6.0, 4.0]]), 0.5)
    assert rescaled.tolist() == [[3.0, 2.5, 5.0, 3.5]]
    rois = B.bbox_rescale(torch.tensor([[7.0, 2.0, 2.0, 6.0, 4.0]]), 2.0)
    assert rois.tolist() == [[7.0, 0.0, 1.0, 8.0, 5.0]]


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
def test_bbox_mapping_round_trip(flip: bool, direction: str) -> None:
    boxes = torch.tensor([[1.0, 2.0, 7.0, 9.0], [0.0, 0.0, 3.0, 3.0]])
    scale = np.array([1.5, 2.0, 1.5, 2.0], np.float32)
    img_shape = (40, 30, 3)
    mapped = B.bbox_mapping(boxes, img_shape, scale, flip, direction)
    if not flip:
        assert mapped[0].tolist() == [1.5, 4.0, 10.5, 18.0]
    back = B.bbox_mapping_back(mapped, img_shape, scale, flip, direction)
    assert torch.allclose(back, boxes)
    back_np = B.bbox_mapping_back(mapped.numpy(), img_shape, scale, flip, direction)
    assert np.allclose(back_np, boxes.numpy())


def test_bbox2roi_and_back() -> None:
    per_image = [torch.rand(3, 4), torch.zeros(0, 4), torch.rand(2, 4)]
    rois = B.bbox2roi(per_image)
    assert rois.shape == (5, 5)
    assert rois[:, 0].tolist() == [0, 0, 0, 2, 2]
    back = B.roi2bbox(rois)
    assert len(back) == 2
    assert torch.equal(back[0], per_image[0]) and torch.equal(back[1], per_image[2])
    assert B.bbox2roi([]).shape == (0, 5)


def test_bbox2result() -> None:
    dets = torch.tensor([[0, 0, 1, 1, 0.9], [1, 1, 2, 2, 0.8], [2, 2, 3, 3, 0.7]])
    labels = torch.tensor([2, 0, 2])
    res = B.bbox2result(dets, labels, 3)
    assert [r.shape for r in res] == [(1, 5), (0, 5), (2, 5)]
    assert all(isinstance(r, np.ndarray) for r in res)
    assert np.allclose(res[2][:, 4], [0.9, 0.7])
    empty = B.bbox2result(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), 2)
    assert [(r.shape, r.dtype) for r in empty] == [((0, 5), np.float32)] * 2


def test_distance_round_trip() -> None:
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(10, 2, generator=gen) * 20
    dist = torch.rand(10, 4, generator=gen) * 5
    boxes = B.distance2bbox(points, dist)
    assert torch.allclose(B.bbox2distance(points, boxes), dist, atol=1e-5)
    clipped = B.distance2bbox(points, dist * 10, max_shape=(15, 12))
    assert clipped[:, 0::2].max() <= 12 and clipped[:, 1::2].max() <= 15
    assert clipped.min() >= 0
    capped = B.bbox2distance(points, B.distance2bbox(points, dist * 10), max_dis=8.0)
    assert capped.max() <= 7.9 + 1e-6


def test_distance2bbox_batched_with_one_max_shape_per_image() -> None:
    """v2: batched points/distances take one (h, w[, c]) per image (a TypeError before)."""
    points = torch.tensor([[[5.0, 5.0]], [[5.0, 5.0]]])
    dist = torch.tensor([[[10.0, 1.0, 30.0, 30.0]], [[1.0, 10.0, 30.0, 30.0]]])
    out = B.distance2bbox(points, dist, max_shape=[(10, 20, 3), (20, 10, 3)])
    assert out.tolist() == [[[0.0, 4.0, 20.0, 10.0]], [[4.0, 0.0, 10.0, 20.0]]]
    same = B.distance2bbox(points, dist, max_shape=torch.tensor([[10, 20], [10, 20]]))
    assert same.tolist() == B.distance2bbox(points, dist, max_shape=(10, 20)).tolist()
    with pytest.raises(ValueError, match="distance2bbox: 3 max_shapes"):
        B.distance2bbox(points, dist, max_shape=[(10, 20)] * 3)
