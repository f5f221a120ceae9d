"""``YOLOX``: multi-scale batch resizing (v2's ``_preprocess`` / ``_random_resize``)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

from detforge.models import build_detector

TINY: dict[str, Any] = dict(
    type="YOLOX",
    input_size=(64, 96),
    random_size_range=(1, 3),
    random_size_interval=2,
    backbone=dict(type="CSPDarknet", deepen_factor=0.33, widen_factor=0.125),
    neck=dict(type="YOLOXPAFPN", in_channels=[32, 64, 128], out_channels=16, num_csp_blocks=1),
    bbox_head=dict(type="YOLOXHead", num_classes=2, in_channels=16, feat_channels=16),
    train_cfg=dict(assigner=dict(type="SimOTAAssigner", center_radius=2.5)),
    test_cfg=dict(score_thr=0.01, nms=dict(type="nms", iou_threshold=0.65)),
)


def test_sizes_are_drawn_every_interval_and_batches_and_boxes_follow() -> None:
    model = build_detector(TINY)
    seen: list[tuple[int, ...]] = []
    model.backbone.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    img = torch.rand(2, 3, 64, 96)
    metas = [dict(img_shape=(64, 96, 3), pad_shape=(64, 96, 3), scale_factor=[1.0] * 4)] * 2
    boxes = [torch.tensor([[8.0, 8.0, 40.0, 32.0]]), torch.tensor([[0.0, 0.0, 96.0, 64.0]])]
    labels = [torch.tensor([0]), torch.tensor([1])]
    random.seed(3)
    draws = [random.randint(1, 3) for _ in range(2)]
    random.seed(3)
    sizes = []
    for _ in range(4):
        model.forward_train(img, metas, boxes, labels)
        sizes.append(model._input_size)
    # iterations 1-2 at input_size; a draw after iteration 2 (and 4): (32 s, 32 int(1.5 s))
    expected = [(32 * s, 32 * int(1.5 * s)) for s in draws]
    assert [s[-2:] for s in seen] == [(64, 96), (64, 96), expected[0], expected[0]]
    assert sizes == [(64, 96), expected[0], expected[0], expected[1]]
    assert boxes[0].tolist() == [[8.0, 8.0, 40.0, 32.0]]  # the caller's boxes are not changed
    resized, scaled = model._preprocess(img, boxes)
    h, w = model._input_size
    assert resized.shape[-2:] == (h, w)
    assert scaled[1].tolist() == [[0.0, 0.0, float(w), float(h)]]


def test_bad_sizes_are_errors() -> None:
    with pytest.raises(ValueError, match="random_size_interval"):
        build_detector(dict(TINY, random_size_interval=0))
