"""single_gpu_test: every v2 result shape comes back with its masks RLE-encoded, boxes untouched."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from detforge.engine.testing import single_gpu_test
from detforge.structures.masks import rle_encode

MASK = np.eye(4, dtype=bool)
SCORES = [[0.7], []]


def _boxes(index: int) -> list[np.ndarray]:
    return [np.array([[0, 0, 2, 2, index]], np.float32), np.zeros((0, 5), np.float32)]


class ShapeDetector(nn.Module):
    """Two classes (the second empty) in the v2 result shape ``form``, one result per image."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form

    def forward(self, img: list[torch.Tensor], img_metas: list[Any], **kwargs: Any) -> list[Any]:
        out: list[Any] = []
        for meta in img_metas[0]:
            boxes = _boxes(meta["index"])
            if self.form == "bbox":
                out.append(boxes)
            elif self.form == "bbox+segm":
                out.append((boxes, [[MASK], []]))
            else:
                out.append((boxes, ([[MASK], []], SCORES)))
        return out


@pytest.mark.parametrize("form", ["bbox", "bbox+segm", "bbox+(segm, scores)"])
def test_masks_of_every_result_shape_are_rle_encoded(form: str) -> None:
    batch = dict(img=torch.zeros(2, 3, 4, 4), img_metas=[dict(index=0), dict(index=1)])
    results = single_gpu_test(ShapeDetector(form), [batch])
    assert len(results) == 2
    for index, result in enumerate(results):
        if form == "bbox":
            assert isinstance(result, list)
            boxes = result
        else:
            assert isinstance(result, tuple) and len(result) == 2
            boxes, segm = result
            if form == "bbox+(segm, scores)":
                segm, scores = segm
                assert scores is SCORES
            assert segm == [[rle_encode(MASK)], []]
        assert all(np.array_equal(a, b) for a, b in zip(boxes, _boxes(index), strict=True))
