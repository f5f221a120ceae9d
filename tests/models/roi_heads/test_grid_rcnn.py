"""Grid R-CNN against MMDetection 3.3 (tests/data/goldens/grid_rcnn), its full-size layout,
and the grid targets and box voting by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.detectors import GridRCNN
from detforge.models.roi_heads import GridHead, GridRoIHead
from detforge.models.roi_heads.grid_head import grid_sub_regions, grid_targets
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
    model, inputs, expected = load_golden("grid_rcnn")
    assert isinstance(model, GridRCNN) and isinstance(model.roi_head, GridRoIHead)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        check_proposals(model.rpn_head.simple_test_rpn(feats, metas(inputs)), expected["proposals"])
    check_detections(model, inputs, expected)
    check_losses_and_grads(model, inputs, expected)


def test_targets_mark_the_ground_truth_points() -> None:
    """A RoI equal to its ground truth: point j sits at the centre of its sub-region's
    quarter positions of the enlarged (2x) RoI, i.e. cells 14/28/42 of the 56-cell map."""
    box = torch.tensor([[10.0, 20.0, 50.0, 60.0]])
    t = grid_targets(box, box, 9, 56, pos_radius=0)
    assert t.shape == (1, 9, 28, 28) and int(t.sum()) == 9
    regions = grid_sub_regions(9, 56)
    for j in range(9):
        y, x = (t[0, j] == 1).nonzero()[0].tolist()
        full_x, full_y = x + regions[j][0], y + regions[j][1]
        assert (full_x, full_y) == (14 + 14 * (j // 3), 14 + 14 * (j % 3))
    tiny = torch.tensor([[0.0, 0.0, 1.0, 1.0]])  # enlarged width 2 <= grid size 3: no target
    assert grid_targets(tiny, tiny, 9, 56, 1).sum() == 0
    with pytest.raises(ValueError, match="ground truths"):
        grid_targets(box, torch.zeros(2, 4), 9, 56, 1)


def test_boxes_vote_on_the_edges_and_keep_scores() -> None:
    head = GridHead(
        grid_points=4,
        num_convs=1,
        roi_feat_size=4,
        in_channels=2,
        point_feat_channels=4,
        norm_cfg=None,
    )
    det = torch.tensor([[10.0, 10.0, 30.0, 50.0, 0.7]])
    half = head.whole_map_size // 4 * 2  # 8
    pred = torch.full((1, 4, half, half), -10.0)
    # every point peaks on cell (0, 0) of its sub-region
    pred[:, :, 0, 0] = 10.0
    out = head.get_bboxes(det, pred)
    w, h = 20.0, 40.0
    regions = grid_sub_regions(4, 16)
    want_x1 = (regions[0][0] + 0.5) / half * w + (10 - w / 2)
    want_y1 = (regions[0][1] + 0.5) / half * h + (10 - h / 2)
    assert out[0, 0].item() == pytest.approx(want_x1)
    assert out[0, 1].item() == pytest.approx(want_y1)
    assert out[0, 4].item() == pytest.approx(0.7)
    with pytest.raises(ValueError, match="square"):
        GridHead(grid_points=8, norm_cfg=None)
    with pytest.raises(ValueError, match="GN groups"):
        GridHead(point_feat_channels=7)


def test_training_without_positives_has_no_grid_loss(one_thread: Any) -> None:
    model, inputs, _ = load_golden("grid_rcnn")
    model.train()
    n = len(inputs["gt_bboxes"])
    losses = model.forward_train(
        inputs["img"],
        metas(inputs),
        [torch.zeros(0, 4)] * n,
        [torch.zeros(0, dtype=torch.long)] * n,
    )
    assert "loss_grid" not in losses and float(losses["loss_cls"]) > 0


def test_full_size_layout() -> None:
    config = V2_CONFIGS / "grid_rcnn" / "grid_rcnn_r50_fpn_gn-head_2x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    path = GOLDENS / "grid_rcnn" / "layout_grid_rcnn_r50_fpn_gn-head_2x.json"
    expected = json.loads(path.read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
