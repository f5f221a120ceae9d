"""Libra R-CNN against MMDetection 3.3 (tests/data/goldens/libra_rcnn), its full-size layout,
and the balanced samplers by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.samplers import (
    CombinedSampler,
    InstanceBalancedPosSampler,
    IoUBalancedNegSampler,
)
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    check_proposals,
    load_golden,
    metas,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"


def test_golden(one_thread: Any) -> None:
    model, inputs, expected = load_golden("libra_rcnn")
    assert isinstance(model.neck, nn.Sequential)
    sampler = model.roi_head.bbox_sampler
    assert isinstance(sampler, CombinedSampler)
    assert isinstance(sampler.pos_sampler, InstanceBalancedPosSampler)
    assert isinstance(sampler.neg_sampler, IoUBalancedNegSampler)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        check_proposals(model.rpn_head.simple_test_rpn(feats, metas(inputs)), expected["proposals"])
    check_detections(model, inputs, expected)
    check_losses_and_grads(model, inputs, expected)


def test_positives_are_spread_over_the_ground_truths() -> None:
    # gt 1 has 10 positives, gt 2 has 2: 6 wanted -> at most round(6 / 2) + 1 = 4 of gt 1
    gt_inds = torch.tensor([1] * 10 + [2] * 2 + [0] * 4)
    assign = AssignResult(2, gt_inds, torch.rand(16))
    sampler = InstanceBalancedPosSampler(num=12, pos_fraction=0.5)
    torch.manual_seed(0)
    pos = sampler._sample_pos(assign, 6, torch.zeros(16, 4), None)
    assert len(pos) == 6 and len(set(pos.tolist())) == 6
    assert {10, 11} <= set(pos.tolist()) and bool((gt_inds[pos] > 0).all())
    assert sampler._sample_pos(assign, 20, torch.zeros(16, 4), None).tolist() == list(range(12))


def test_negatives_are_spread_over_iou_bins() -> None:
    """IoUs 0.0 ... 0.49 (50 negatives), 3 bins of [0, 0.49): 5 of each bin among 15 wanted;
    with floor_thr=0.2 and floor_fraction 0.4, 6 come from below 0.2."""
    overlaps = torch.arange(50, dtype=torch.float32) / 100
    assign = AssignResult(1, torch.zeros(50, dtype=torch.long), overlaps)
    torch.manual_seed(0)
    sampler = IoUBalancedNegSampler(num=30, pos_fraction=0.5, floor_thr=0, num_bins=3)
    neg = sampler._sample_neg(assign, 15, torch.zeros(50, 4), None)
    bins = torch.bucketize(overlaps[neg], torch.tensor([0.49 / 3, 0.98 / 3]), right=True)
    assert len(set(neg.tolist())) == 15 and bins.bincount().tolist() == [5, 5, 5]
    floor = IoUBalancedNegSampler(num=30, pos_fraction=0.5, floor_thr=0.2, floor_fraction=0.4)
    neg = floor._sample_neg(assign, 15, torch.zeros(50, 4), None)
    assert int((overlaps[neg] < 0.2).sum()) == 6 and len(set(neg.tolist())) == 15
    with pytest.raises(ValueError, match="floor_thr"):
        IoUBalancedNegSampler(num=1, pos_fraction=0.5, floor_thr=-0.5)


def test_full_size_layout() -> None:
    config = V2_CONFIGS / "libra_rcnn" / "libra_faster_rcnn_r50_fpn_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    path = GOLDENS / "libra_rcnn" / "layout_libra_faster_rcnn_r50_fpn_1x.json"
    expected = json.loads(path.read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
