"""Sample builders and property checks shared by the transform tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from detforge.structures.masks import BitmapMasks

__all__ = [
    "Results",
    "check_invariants",
    "check_masks_match_boxes",
    "find_offset",
    "make_sample",
    "one_box",
]

Results = dict[str, Any]


def make_sample(
    h: int = 60, w: int = 80, n: int = 5, seed: int = 0, with_ignore: bool = False
) -> Results:
    """A v2 results dict whose masks and seg map are exactly the box regions.

    Labels are ``arange(n)`` so a label names the original instance. A private generator is
    used so the global ``np.random`` state (the one transforms draw from) is untouched.
    """
    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, w - 12, n)
    y1 = rng.integers(0, h - 12, n)
    x2 = np.minimum(x1 + rng.integers(6, w // 2, n), w)
    y2 = np.minimum(y1 + rng.integers(6, h // 2, n), h)
    boxes = np.stack([x1, y1, x2, y2], 1).astype(np.float32)
    masks = np.zeros((n, h, w), np.uint8)
    seg = np.zeros((h, w), np.uint8)
    for i, (a, b, c, d) in enumerate(boxes.astype(int)):
        masks[i, b:d, a:c] = 1
        seg[b:d, a:c] = 10 + i
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    results: Results = dict(
        img=img,
        img_shape=img.shape,
        ori_shape=img.shape,
        img_fields=["img"],
        bbox_fields=["gt_bboxes"],
        mask_fields=["gt_masks"],
        seg_fields=["gt_semantic_seg"],
        gt_bboxes=boxes,
        gt_labels=np.arange(n, dtype=np.int64),
        gt_masks=BitmapMasks(masks, h, w),
        gt_semantic_seg=seg,
    )
    if with_ignore:
        results["bbox_fields"].append("gt_bboxes_ignore")
        results["gt_bboxes_ignore"] = boxes[:2].copy() + 1
    return results


def check_invariants(r: Results, masks: bool = True, seg: bool = True) -> None:
    """dtype, in-image and alignment properties every transform must keep."""
    img = r["img"]
    h, w = img.shape[:2]
    assert tuple(r["img_shape"]) == img.shape
    boxes = r["gt_bboxes"]
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert r["gt_labels"].dtype == np.int64 and len(r["gt_labels"]) == len(boxes)
    if masks:
        assert len(r["gt_masks"]) == len(boxes)
        assert (r["gt_masks"].height, r["gt_masks"].width) == (h, w)
    if seg:
        assert r["gt_semantic_seg"].shape == (h, w)


def check_masks_match_boxes(r: Results, tol: float = 1.0, contained: bool = False) -> None:
    """Each non-empty mask's tight box is within ``tol`` px of its box.

    With ``contained`` the mask box need only lie inside the box (grown by ``tol``): a warped
    shape cut by the image border keeps the box of all its corners, as in v2.
    """
    masks = r["gt_masks"]
    mask_boxes = masks.get_bboxes()[masks.masks.any(axis=(1, 2))]
    boxes = r["gt_bboxes"][masks.masks.any(axis=(1, 2))]
    if contained:
        assert (mask_boxes[:, :2] >= boxes[:, :2] - tol).all(), (mask_boxes, boxes)
        assert (mask_boxes[:, 2:] <= boxes[:, 2:] + tol).all(), (mask_boxes, boxes)
    else:
        assert (np.abs(mask_boxes - boxes) <= tol).all(), (mask_boxes, boxes)


def find_offset(big: np.ndarray, small: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` where ``small`` sits inside ``big`` (random images make it unique)."""
    h, w = small.shape[:2]
    for y in range(big.shape[0] - h + 1):
        for x in range(big.shape[1] - w + 1):
            if np.array_equal(big[y : y + h, x : x + w], small):
                return x, y
    raise AssertionError("crop not found in the source image")


def one_box(h: int = 40, w: int = 40, box: tuple[int, int, int, int] = (10, 10, 20, 20)) -> Results:
    """A ``make_sample`` with one ``box`` whose mask and seg map (value 10) fill it."""
    r = make_sample(h=h, w=w, n=1)
    x1, y1, x2, y2 = box
    m = np.zeros((1, h, w), np.uint8)
    m[0, y1:y2, x1:x2] = 1
    r["gt_bboxes"] = np.array([box], np.float32)
    r["gt_masks"] = BitmapMasks(m, h, w)
    r["gt_semantic_seg"] = (m[0] * 10).astype(np.uint8)
    return r
