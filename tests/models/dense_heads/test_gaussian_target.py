"""Gaussian heatmap targets and keypoint decoding helpers of CenterNet/CornerNet."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.dense_heads.centernet_head import centernet_targets
from detforge.models.dense_heads.gaussian_target import (
    gaussian_radius,
    gen_gaussian_target,
    get_local_maximum,
    get_topk_from_heatmap,
    transpose_and_gather_feat,
)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.mark.parametrize(("h", "w"), [(10.0, 20.0), (3.0, 40.0), (50.0, 50.0)])
def test_radius_keeps_the_overlap_for_every_corner_case(h: float, w: float) -> None:
    r = gaussian_radius((h, w), min_overlap=0.3)
    box = (0.0, 0.0, w, h)
    cases = [
        (r, r, w + r, h + r),  # one corner inside, one outside
        (r, r, w - r, h - r),  # both inside
        (-r, -r, w + r, h + r),  # both outside
    ]
    ious = [_iou(box, c) for c in cases]
    assert min(ious) == pytest.approx(0.3, abs=1e-6)  # the binding case sits exactly at 0.3
    assert all(iou >= 0.3 - 1e-6 for iou in ious)


def test_gaussian_is_cut_at_the_border_and_keeps_the_maximum() -> None:
    heat = torch.zeros(5, 6)
    heat[0, 1] = 0.9
    gen_gaussian_target(heat, (0, 0), 2)
    assert heat[0, 0] == 1 and heat[0, 1] == 0.9  # the existing higher value stays
    sigma = 5 / 6
    assert float(heat[2, 0]) == pytest.approx(math.exp(-4 / (2 * sigma**2)), rel=1e-6)
    assert heat[3:, :].sum() == 0 and heat[:, 3:].sum() == 0


def test_local_maximum_topk_and_gather() -> None:
    heat = torch.zeros(1, 2, 3, 4)
    heat[0, 0, 1, 1], heat[0, 0, 1, 2], heat[0, 1, 2, 3] = 0.5, 0.4, 0.8
    peaks = get_local_maximum(heat)
    assert peaks[0, 0, 1, 2] == 0 and peaks[0, 0, 1, 1] == 0.5
    scores, inds, classes, ys, xs = get_topk_from_heatmap(peaks, k=2)
    assert scores[0].tolist() == pytest.approx([0.8, 0.5])
    assert inds.tolist() == [[11, 5]] and classes.tolist() == [[1, 0]]
    assert ys.tolist() == [[2, 1]] and xs.tolist() == [[3.0, 1.0]]
    feat = torch.arange(24.0).view(1, 2, 3, 4)
    assert transpose_and_gather_feat(feat, inds).tolist() == [[[11.0, 23.0], [5.0, 17.0]]]


def test_centernet_targets() -> None:
    boxes = [torch.tensor([[8.0, 8.0, 40.0, 24.0], [0.0, 0.0, 2.0, 2.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([2, 0]), torch.zeros(0, dtype=torch.long)]
    targets, avg = centernet_targets(boxes, labels, 3, (2, 3, 8, 16), (32, 64))
    # ratio 1/4: centre (6, 4), size (8, 4); the tiny box has radius 0 at (0, 0)
    assert int(avg) == 2
    assert targets["center_heatmap_target"][0, 2, 4, 6] == 1
    assert targets["wh_target"][0, :, 4, 6].tolist() == [8.0, 4.0]
    assert targets["offset_target"][0, :, 4, 6].tolist() == [0.0, 0.0]
    assert targets["offset_target"][0, :, 0, 0].tolist() == [0.25, 0.25]
    assert targets["wh_offset_target_weight"].sum() == 4
    assert targets["center_heatmap_target"][1].sum() == 0
    heat0 = targets["center_heatmap_target"][0, 0]
    assert heat0[0, 0] == 1 and heat0.sum() == 1
