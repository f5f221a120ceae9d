"""Dynamic R-CNN against MMDetection 3.3 (tests/data/goldens/dynamic_rcnn): detections,
losses and gradients, and the IoU-threshold/beta update after two training passes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from detforge.models.roi_heads import DynamicRoIHead
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    load_golden,
    train_losses,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"


def test_golden_and_schedule(one_thread: Any) -> None:
    model, inputs, expected = load_golden("dynamic_rcnn")
    head = model.roi_head
    assert isinstance(head, DynamicRoIHead)
    check_detections(model, inputs, expected)
    check_losses_and_grads(model, inputs, expected)
    assert len(head.iou_history) == 1 and len(head.beta_history) == 1
    assert head.bbox_assigner.pos_iou_thr == 0.5  # not updated yet
    second = train_losses(model, inputs)
    assert head.iou_history == [] and head.beta_history == []
    for key, value in expected["after_update"].items():
        got = head.bbox_head.loss_bbox.beta if key == "beta" else getattr(head.bbox_assigner, key)
        assert got == pytest.approx(value, rel=1e-6), key
    third = train_losses(model, inputs)
    for losses, want in zip((second, third), expected["losses_steps"][1:], strict=True):
        _, log_vars = parse_losses(losses)
        for name, value in want.items():
            assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_checks() -> None:
    cfg = (
        load_config(
            V2_CONFIGS / "dynamic_rcnn" / "dynamic_rcnn_r50_fpn_1x_coco.py", environ={}
        ).cfg.model.roi_head.to_dict()
        if (V2_CONFIGS / "dynamic_rcnn").is_dir()
        else None
    )
    if cfg is None:
        pytest.skip("v2 configs not found")
    cfg.pop("type")
    train = dict(
        assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
        sampler=dict(type="RandomSampler", num=8, pos_fraction=0.25),
        pos_weight=-1,
        dynamic_rcnn=dict(iou_topk=75, beta_topk=10, update_iter_interval=100, initial_iou=0.4),
    )
    with pytest.raises(ValueError, match="initial_beta"):
        DynamicRoIHead(train_cfg=train, **cfg)
    l1 = dict(cfg, bbox_head=dict(cfg["bbox_head"], loss_bbox=dict(type="L1Loss")))
    with pytest.raises(ValueError, match="SmoothL1Loss"):
        DynamicRoIHead(**l1)
    head = DynamicRoIHead(**cfg)  # no train_cfg: a test-only head
    assert head.iou_history == []


def test_update_without_records_keeps_beta() -> None:
    head = DynamicRoIHead(
        bbox_roi_extractor=dict(
            type="SingleRoIExtractor",
            roi_layer=dict(type="RoIAlign", output_size=7),
            out_channels=4,
            featmap_strides=[4],
        ),
        bbox_head=dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=8, num_classes=2),
        train_cfg=dict(
            assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
            sampler=dict(type="RandomSampler", num=8, pos_fraction=0.25),
            pos_weight=-1,
            dynamic_rcnn=dict(
                iou_topk=2, beta_topk=1, update_iter_interval=1, initial_iou=0.4, initial_beta=1.0
            ),
        ),
    )
    head.bbox_head.loss_bbox.beta = 0.7
    assert head.update_hyperparameters() == (0.4, 0.7)
    head.iou_history, head.beta_history = [0.6, 0.8], [0.2, 0.05, 0.3]
    iou, beta = head.update_hyperparameters()
    assert iou == pytest.approx(0.7) and beta == pytest.approx(0.2)
    assert head.bbox_assigner.min_pos_iou == pytest.approx(0.7)
    x = [torch.randn(1, 4, 16, 16)]
    meta = [dict(img_shape=(64, 64, 3), pad_shape=(64, 64, 3), scale_factor=1.0)]
    head.train()
    losses = head.forward_train(
        x,
        meta,
        [torch.tensor([[40.0, 40.0, 60.0, 60.0]])],
        [torch.zeros(0, 4)],
        [torch.zeros(0, dtype=torch.long)],
    )
    assert float(losses["loss_bbox"]) == 0  # no positives: no target recorded, no crash
    assert head.beta_history == [] and head.bbox_head.loss_bbox.beta == pytest.approx(0.2)


def test_full_size_layout() -> None:
    config = V2_CONFIGS / "dynamic_rcnn" / "dynamic_rcnn_r50_fpn_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    expected = json.loads(
        (GOLDENS / "dynamic_rcnn" / "layout_dynamic_rcnn_r50_fpn_1x.json").read_text()
    )
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
