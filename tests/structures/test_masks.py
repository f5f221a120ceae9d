"""Tests for BitmapMasks / PolygonMasks, crop_and_resize against a slow RoIAlign, helpers."""

from __future__ import annotations

import math

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from detforge.structures.masks import (
    BitmapMasks,
    PolygonMasks,
    encode_mask_results,
    mask2bbox,
    mask2ndarray,
    polygon_to_bitmap,
    rle_decode,
    rle_encode,
)

H, W = 24, 32
DIRECTIONS = ["horizontal", "vertical", "diagonal"]


def _rect(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([x1, y1, x2, y1, x2, y2, x1, y2], dtype=np.float64)


@pytest.fixture
def polys() -> PolygonMasks:
    return PolygonMasks(
        [
            [_rect(2, 3, 12, 9)],
            [np.array([15.0, 4.0, 28.0, 6.0, 20.0, 20.0])],  # triangle
            [_rect(1, 14, 6, 22), _rect(8, 16, 13, 21)],  # two parts
        ],
        H,
        W,
    )


@pytest.fixture
def bitmaps() -> BitmapMasks:
    return BitmapMasks.random(4, H, W, rng=0)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float((a & b).sum() / max((a | b).sum(), 1))


# ----------------------------------------------------------------------------- slow RoIAlign


def _bilinear(img: np.ndarray, y: float, x: float) -> float:
    h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    return float(
        hy * hx * img[y0, x0]
        + hy * lx * img[y0, x1]
        + ly * hx * img[y1, x0]
        + ly * lx * img[y1, x1]
    )


def _slow_roi_align(img: np.ndarray, box: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """RoIAlign as MMDetection uses it: aligned=True, adaptive sampling, average pooling."""
    x1, y1, x2, y2 = (float(v) - 0.5 for v in box)
    roi_h, roi_w = y2 - y1, x2 - x1
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    grid_h, grid_w = math.ceil(roi_h / out_h), math.ceil(roi_w / out_w)
    count = max(grid_h * grid_w, 1)
    out = np.zeros((out_h, out_w))
    for ph in range(out_h):
        for pw in range(out_w):
            total = 0.0
            for iy in range(grid_h):
                y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    total += _bilinear(img, y, x)
            out[ph, pw] = total / count
    return out


def test_crop_and_resize_matches_slow_roi_align(bitmaps: BitmapMasks) -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(-3, 20, (6, 2))
    wh = rng.uniform(0.5, 16, (6, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    boxes[0] = [0, 0, W, H]  # whole canvas
    inds = np.array([0, 1, 2, 3, 1, 0])
    soft = bitmaps.crop_and_resize(boxes, (5, 7), inds, binarize=False).masks
    hard = bitmaps.crop_and_resize(torch.from_numpy(boxes), (5, 7), torch.from_numpy(inds))
    assert soft.shape == (6, 5, 7) and hard.masks.shape == (6, 5, 7)
    assert hard.masks.dtype == bool and (hard.height, hard.width) == (5, 7)
    for k in range(6):
        ref = _slow_roi_align(bitmaps.masks[inds[k]].astype(np.float64), boxes[k], 5, 7)
        np.testing.assert_allclose(soft[k], ref, atol=1e-5)
        clear = np.abs(ref - 0.5) > 1e-4
        assert np.array_equal(hard.masks[k][clear], (ref >= 0.5)[clear])


def test_crop_and_resize_empty_cases(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    none = bitmaps.crop_and_resize(np.zeros((0, 4), np.float32), (7, 7), np.zeros(0, np.int64))
    assert none.masks.shape == (0, 7, 7)
    empty = BitmapMasks(np.zeros((0, H, W), np.uint8), H, W)
    assert empty.crop_and_resize(np.ones((2, 4), np.float32), (3, 3), np.zeros(2)).masks.shape == (
        0,
        3,
        3,
    )
    assert len(PolygonMasks([], H, W).crop_and_resize(np.ones((1, 4)), (3, 3), [0])) == 0


def test_polygon_crop_and_resize_agrees_with_bitmap(polys: PolygonMasks) -> None:
    boxes = np.array([[2, 3, 12, 9], [14, 3, 29, 21], [0, 13, 14, 23]], np.float32)
    inds = np.arange(3)
    from_poly = polys.crop_and_resize(boxes, (28, 28), inds).to_ndarray()
    from_bitmap = polys.to_bitmap().crop_and_resize(boxes, (28, 28), inds).masks
    assert from_poly.shape == from_bitmap.shape == (3, 28, 28)
    for a, b in zip(from_poly, from_bitmap, strict=True):
        assert _iou(a, b) > 0.8
    assert from_poly[0].all()  # a box equal to a rectangle mask fills the target


# ------------------------------------------------------------------- construction / indexing


def test_bitmap_construction_and_indexing(bitmaps: BitmapMasks) -> None:
    assert len(bitmaps) == 4 and repr(bitmaps) == "BitmapMasks(num_masks=4, height=24, width=32)"
    assert len(bitmaps[1]) == 1 and np.array_equal(bitmaps[1].masks[0], bitmaps.masks[1])
    assert len(bitmaps[np.array([True, False, True, False])]) == 2
    assert len(bitmaps[[3, 0, 0]]) == 3
    assert BitmapMasks([], H, W).masks.shape == (0, H, W)
    assert BitmapMasks(list(bitmaps.masks), H, W).masks.shape == (4, H, W)
    with pytest.raises(ValueError, match="do not match"):
        BitmapMasks(np.zeros((2, 5, 5), np.uint8), 5, 6)
    t = bitmaps.to_tensor(torch.float32, "cpu")
    assert t.dtype == torch.float32 and t.shape == (4, H, W)
    assert bitmaps.to_ndarray() is bitmaps.masks


def test_polygon_construction_and_indexing(polys: PolygonMasks) -> None:
    assert len(polys) == 3
    assert len(polys[2]) == 1 and len(polys[2].masks[0]) == 2
    assert len(polys[np.array([0, 2])]) == 2
    assert len(polys[np.array([True, False, True])]) == 2
    assert len(polys[1:]) == 2
    ints = PolygonMasks([[np.array([0, 0, 4, 0, 4, 4])]], 8, 8)
    assert ints.masks[0][0].dtype == np.float64
    with pytest.raises(ValueError, match=r"masks\[0\]\[0\]"):
        PolygonMasks([[np.array([0.0, 1.0, 2.0])]], 8, 8)
    with pytest.raises(TypeError, match="list of polygons"):
        PolygonMasks([np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])], 8, 8)  # type: ignore[list-item]
    empty = PolygonMasks([], H, W)
    assert empty.to_ndarray().shape == (0, H, W)
    assert empty.to_tensor(torch.uint8, "cpu").shape == (0, H, W)
    assert polys.to_tensor(torch.uint8, "cpu").shape == (3, H, W)


def test_random_constructors() -> None:
    b = BitmapMasks.random(3, 10, 12, rng=4)
    assert b.masks.shape == (3, 10, 12) and set(np.unique(b.masks)) <= {0, 1}
    p = PolygonMasks.random(5, 30, 40, n_verts=7, rng=4)
    assert len(p) == 5 and all(len(obj[0]) == 14 for obj in p.masks)
    boxes = p.get_bboxes()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 40).all() and (boxes[:, 3] <= 30).all()


# ----------------------------------------------------------------------------- bitmap vs polygon


def test_rectangles_agree_exactly(polys: PolygonMasks) -> None:
    rects = polys[[0, 2]]
    raster = rects.to_bitmap()
    assert raster.masks.dtype == np.uint8
    assert rects.areas.tolist() == [60.0, 65.0]
    assert raster.areas.tolist() == [60, 65]
    assert np.array_equal(rects.get_bboxes(), raster.get_bboxes())
    assert rects.get_bboxes().tolist() == [[2, 3, 12, 9], [1, 14, 13, 22]]


def test_polygons_agree_within_rasterisation(polys: PolygonMasks) -> None:
    for pm in (polys, PolygonMasks.random(6, H, W, rng=2)):
        raster = pm.to_bitmap()
        perimeters = np.array(
            [
                sum(
                    np.linalg.norm(
                        np.diff(p.reshape(-1, 2), axis=0, append=p[None, :2]), axis=1
                    ).sum()
                    for p in obj
                )
                for obj in pm.masks
            ]
        )
        assert np.all(np.abs(raster.areas - pm.areas) <= 0.5 * perimeters + 1)
        assert np.abs(raster.get_bboxes() - pm.get_bboxes()).max() <= 1.5


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_flip_twice_is_identity(bitmaps: BitmapMasks, polys: PolygonMasks, direction: str) -> None:
    once = bitmaps.flip(direction)
    assert not np.array_equal(once.masks, bitmaps.masks)
    assert np.array_equal(once.flip(direction).masks, bitmaps.masks)
    pflip = polys.flip(direction)
    back = pflip.flip(direction)
    for obj, obj_back in zip(polys.masks, back.masks, strict=True):
        for p, q in zip(obj, obj_back, strict=True):
            np.testing.assert_allclose(p, q)
    # flipping polygons then rasterising matches flipping the raster
    for a, b in zip(pflip.to_ndarray(), polys.to_bitmap().flip(direction).masks, strict=True):
        assert _iou(a, b) > 0.85
    with pytest.raises(ValueError, match="flip_direction"):
        bitmaps.flip("sideways")


def test_resize_rescale_pad_shapes(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    assert bitmaps.resize((48, 16)).masks.shape == (4, 48, 16)
    assert polys.resize((48, 16)).to_ndarray().shape == (3, 48, 16)
    r = bitmaps.rescale((100, 60))  # factor min(100/32, 60/24) = 2.5
    assert (r.height, r.width) == (60, 80) and r.masks.shape == (4, 60, 80)
    pr = polys.rescale((100, 60))
    assert (pr.height, pr.width) == (60, 80)
    np.testing.assert_allclose(pr.masks[0][0], polys.masks[0][0] * 2.5)
    padded = bitmaps.pad((30, 40), pad_val=0)
    assert padded.masks.shape == (4, 30, 40) and padded.masks[:, 24:].sum() == 0
    assert np.array_equal(padded.masks[:, :24, :32], bitmaps.masks)
    assert (polys.pad((30, 40)).height, polys.pad((30, 40)).width) == (30, 40)
    empty = BitmapMasks([], H, W)
    assert empty.rescale(0.5).masks.shape == (0, 12, 16)
    assert empty.resize((5, 6)).masks.shape == (0, 5, 6)
    assert empty.pad((30, 40)).masks.shape == (0, 30, 40)
    assert empty.flip().masks.shape == (0, H, W)


def test_crop(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    box = np.array([4, 5, 20, 15])
    c = bitmaps.crop(box)
    assert c.masks.shape == (4, 10, 16)
    assert np.array_equal(c.masks, bitmaps.masks[:, 5:15, 4:20])
    outside = bitmaps.crop(np.array([-5, -5, 100, 100]))
    assert outside.masks.shape == (4, H, W)
    pc = polys.crop(box)
    assert (pc.height, pc.width) == (10, 16)
    raster_crop = polys.to_bitmap().crop(box)
    for a, b in zip(pc.to_ndarray(), raster_crop.masks, strict=True):
        assert abs(int(a.sum()) - int(b.sum())) <= 8
    # an instance entirely outside the crop keeps a zero-area placeholder
    far = polys.crop(np.array([28, 0, 32, 2]))
    assert far.areas[0] == 0 and len(far.masks[0]) == 1
    with pytest.raises(ValueError, match="crop bbox"):
        bitmaps.crop(np.array([1, 2, 3]))


def test_expand(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    e = bitmaps.expand(40, 50, 3, 7)
    assert e.masks.shape == (4, 40, 50)
    assert (
        np.array_equal(e.masks[:, 3:27, 7:39], bitmaps.masks)
        and e.areas.sum() == bitmaps.areas.sum()
    )
    pe = polys.expand(40, 50, 3, 7)
    assert np.array_equal(
        pe.to_ndarray(), polys.to_bitmap().expand(40, 50, 3, 7).masks.astype(bool)
    )


def test_translate(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    t = bitmaps.translate((H, W), 5, "horizontal", interpolation="nearest")
    assert np.array_equal(t.masks[:, :, 5:], bitmaps.masks[:, :, :-5])
    assert t.masks[:, :, :5].sum() == 0
    v = bitmaps[0].translate((H, W), -3, "vertical", interpolation="nearest")
    assert v.masks.shape == (1, H, W) and np.array_equal(v.masks[0, :-3], bitmaps.masks[0, 3:])
    pt = polys.translate((H, W), 4, "horizontal")
    for a, b in zip(pt.to_ndarray(), polys.to_bitmap().translate((H, W), 4).masks, strict=True):
        assert _iou(a, b) > 0.85
    with pytest.raises(ValueError, match="fill_val"):
        polys.translate((H, W), 4, fill_val=3)


def test_shear_and_rotate(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    assert np.array_equal(bitmaps.shear((H, W), 0.0).masks, bitmaps.masks)
    assert bitmaps.shear((H, W), 0.3, "vertical").masks.shape == (4, H, W)
    ps = polys.shear((H, W), 0.2)
    for a, b in zip(ps.to_ndarray(), polys.to_bitmap().shear((H, W), 0.2).masks, strict=True):
        assert _iou(a, b) > 0.75
    rot = bitmaps.rotate((H, W), 180)
    assert np.array_equal(rot.masks, bitmaps.flip("diagonal").masks)
    pr = polys.rotate((H, W), 15)
    raster_rot = polys.to_bitmap().rotate((H, W), 15)
    for a, b in zip(pr.to_ndarray(), raster_rot.masks, strict=True):
        assert _iou(a, b) > 0.75
    empty = BitmapMasks([], H, W)
    assert empty.rotate((H, W), 30).masks.shape == (0, H, W)
    assert empty.translate((H, W), 3).masks.shape == (0, H, W)


# ----------------------------------------------------------------------------- helpers


def test_get_bboxes_and_mask2bbox(bitmaps: BitmapMasks) -> None:
    masks = np.zeros((3, 6, 7), np.uint8)
    masks[0, 1:3, 2:5] = 1
    masks[2, 5, 6] = 1
    bm = BitmapMasks(masks, 6, 7)
    expected = [[2, 1, 5, 3], [0, 0, 0, 0], [6, 5, 7, 6]]
    assert bm.get_bboxes().tolist() == expected
    assert mask2bbox(torch.from_numpy(masks)).tolist() == expected
    assert np.array_equal(mask2bbox(torch.from_numpy(bitmaps.masks)).numpy(), bitmaps.get_bboxes())
    assert mask2bbox(torch.zeros(0, 4, 4)).shape == (0, 4)


def test_polygon_to_bitmap() -> None:
    bitmap = polygon_to_bitmap([_rect(1, 1, 4, 3), np.array([0.0, 0.0, 1.0, 1.0])], 5, 6)
    assert bitmap.dtype == bool and bitmap.sum() == 6  # the 2-point polygon is skipped
    assert polygon_to_bitmap([], 5, 6).shape == (5, 6)


def test_encode_mask_results_round_trip(bitmaps: BitmapMasks) -> None:
    segms = [[bitmaps.masks[0].astype(bool), bitmaps.masks[1].astype(bool)], [], [bitmaps.masks[2]]]
    encoded = encode_mask_results(segms)
    assert isinstance(encoded, list)
    assert [len(c) for c in encoded] == [2, 0, 1]
    assert encoded[0][0]["size"] == [H, W]
    assert np.array_equal(rle_decode(encoded[0][1]), bitmaps.masks[1])
    assert int(mask_utils.area(encoded[2][0])) == int(bitmaps.masks[2].sum())
    scores = [[0.5, 0.6], [], [0.9]]
    enc2, passed = encode_mask_results((segms, scores))
    assert passed is scores and len(enc2) == 3


def test_rle_encode_decode_round_trip() -> None:
    rng = np.random.default_rng(3)
    masks = [rng.random((h, w)) > p for h, w, p in [(1, 1, 0.5), (7, 5, 0.3), (24, 32, 0.8)]]
    masks += [np.zeros((4, 6), bool), np.ones((4, 6), bool), masks[2].T]  # .T: not C-ordered
    for m in masks:
        rle = rle_encode(m)
        reference = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))  # pycocotools
        assert rle == reference and isinstance(rle["counts"], bytes)
        as_str = rle_encode(m, str_counts=True)
        assert as_str == {"size": list(m.shape), "counts": rle["counts"].decode()}
        for encoded in (rle, as_str):
            decoded = rle_decode(encoded)
            assert decoded.dtype == np.uint8 and np.array_equal(decoded, m)
        assert isinstance(as_str["counts"], str)  # decoding left the caller's dict alone
    same = [rle_encode(m.astype(dtype)) for dtype in (np.uint8, np.float32, bool)]
    assert same[0] == same[1] == same[2]
    assert rle_encode(torch.from_numpy(masks[1])) == rle_encode(masks[1])
    with pytest.raises(ValueError, match=r"2-D \[H, W\], got shape \(2, 3, 4\)"):
        rle_encode(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="2-D"):
        encode_mask_results([[np.zeros(5)]])


def test_mask2ndarray_as_v2(bitmaps: BitmapMasks, polys: PolygonMasks) -> None:
    """v2's ``mmdet.core.mask2ndarray``: any mask kind as ``ndarray [n, h, w]``."""
    dense = bitmaps.to_ndarray()
    assert np.array_equal(mask2ndarray(bitmaps), dense)
    assert np.array_equal(mask2ndarray(torch.from_numpy(dense)), dense)
    assert mask2ndarray(dense) is dense
    assert mask2ndarray(polys).shape == (len(polys), H, W)
    with pytest.raises(TypeError, match="unsupported mask type list"):
        mask2ndarray([dense])  # type: ignore[arg-type]
