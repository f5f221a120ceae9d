"""``DistancePointBBoxCoder``: the reference numbers of mmdet's test_coder.py and properties."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.coders import DistancePointBBoxCoder
from detforge.registry import TASK_UTILS, build_module

POINTS = torch.tensor([[74.0, 61.0], [-29.0, 106.0], [138.0, 61.0], [29.0, 170.0]])
GT = torch.tensor(
    [[74.0, 61.0, 75.0, 62.0], [0.0, 104.0, 0.0, 112.0], [100.0, 90.0, 100.0, 120.0],
     [0.0, 120.0, 100.0, 120.0]]
)  # fmt: skip


def test_encode_literal() -> None:
    """Reference §8.3 item 3: ``encode(points, gt, max_dis=50, eps=0)``."""
    coder = build_module(dict(type="DistancePointBBoxCoder"), TASK_UTILS)
    expected = torch.tensor(
        [[0.0, 0.0, 1.0, 1.0], [0.0, 2.0, 29.0, 6.0], [38.0, 0.0, 0.0, 50.0],
         [29.0, 50.0, 50.0, 0.0]]
    )  # fmt: skip
    torch.testing.assert_close(coder.encode(POINTS, GT, max_dis=50, eps=0), expected)


def test_decode_literal_clipped() -> None:
    distance = torch.tensor(
        [[0.0, 0.0, 1.0, 1.0], [1.0, 2.0, 10.0, 6.0], [22.0, -29.0, 138.0, 61.0],
         [54.0, -29.0, 170.0, 61.0]]
    )  # fmt: skip
    coder = DistancePointBBoxCoder()
    torch.testing.assert_close(coder.decode(POINTS, distance, max_shape=(120, 100)), GT)
    torch.testing.assert_close(coder.decode(POINTS, distance, max_shape=(120, 100, 3)), GT)
    torch.testing.assert_close(
        coder.decode(POINTS, distance, max_shape=torch.tensor([120, 100])), GT
    )


def test_decode_batched_per_image_shapes() -> None:
    coder = DistancePointBBoxCoder()
    pts = torch.tensor([[[5.0, 5.0]], [[5.0, 5.0]]])
    dist = torch.full((2, 1, 4), 10.0)
    out = coder.decode(pts, dist, max_shape=[(8, 12), (20, 9)])
    assert out.tolist() == [[[0.0, 0.0, 12.0, 8.0]], [[0.0, 0.0, 9.0, 15.0]]]


def test_no_clip_border_ignores_max_shape() -> None:
    coder = DistancePointBBoxCoder(clip_border=False)
    out = coder.decode(torch.tensor([[5.0, 5.0]]), torch.tensor([[10.0, 1.0, 1.0, 10.0]]), (8, 8))
    assert out.tolist() == [[-5.0, 4.0, 6.0, 15.0]]


def test_roundtrip_inside_boxes() -> None:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=gen) * 100
    wh = torch.rand(50, 2, generator=gen) * 50 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    points = xy + wh * torch.rand(50, 2, generator=gen)
    coder = DistancePointBBoxCoder()
    torch.testing.assert_close(coder.decode(points, coder.encode(points, boxes)), boxes)


def test_shape_errors_name_the_inputs() -> None:
    coder = DistancePointBBoxCoder()
    with pytest.raises(ValueError, match="points"):
        coder.encode(torch.zeros(3, 2), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="pred_bboxes"):
        coder.decode(torch.zeros(3, 2), torch.zeros(3, 5))
