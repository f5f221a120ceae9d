"""Fast R-CNN (FastRCNN on precomputed proposals) against MMDetection 3.3
(tests/data/goldens/fast_rcnn)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.detectors import FastRCNN
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    load_golden,
    metas,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"


def test_golden(one_thread: Any) -> None:
    model, inputs, expected = load_golden("fast_rcnn")
    assert isinstance(model, FastRCNN) and model.rpn_head is None
    proposals = [p[:, :4] for p in expected["proposals"]]  # as LoadProposals gives them
    check_detections(model, inputs, expected, proposals=proposals)
    check_losses_and_grads(model, inputs, expected, proposals=proposals)


def test_forward_test_needs_proposals(one_thread: Any) -> None:
    model, inputs, expected = load_golden("fast_rcnn")
    model.eval()
    with pytest.raises(ValueError, match="LoadProposals"):
        model.forward_test([inputs["img"]], [metas(inputs)])
    with torch.no_grad():
        results = model.forward_test(
            [inputs["img"]], [metas(inputs)], proposals=[expected["proposals"]]
        )
    assert len(results) == len(expected["dets"])


def test_full_size_layout() -> None:
    config = V2_CONFIGS / "fast_rcnn" / "fast_rcnn_r50_fpn_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    expected = json.loads((GOLDENS / "fast_rcnn" / "layout_fast_rcnn_r50_fpn_1x.json").read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
