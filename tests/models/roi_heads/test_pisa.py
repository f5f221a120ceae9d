"""PISA against MMDetection 3.3 (tests/data/goldens/pisa), its full-size layout, and ISR-P,
CARL and the Score-HLR sampler by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.dense_heads import PISARetinaHead, RetinaHead
from detforge.models.losses import CrossEntropyLoss, SmoothL1Loss
from detforge.models.losses.pisa_loss import carl_loss, isr_p
from detforge.models.roi_heads import PISARoIHead
from detforge.models.task_modules.assigners.assign_result import AssignResult
from detforge.models.task_modules.coders import DeltaXYWHBBoxCoder
from detforge.models.task_modules.samplers import ScoreHLRSampler
from detforge.ops import nms_match
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    load_golden,
    metas,
    train_losses,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"


def test_golden(one_thread: Any) -> None:
    model, inputs, expected = load_golden("pisa")
    assert isinstance(model.roi_head, PISARoIHead)
    sampler = model.roi_head.bbox_sampler
    assert isinstance(sampler, ScoreHLRSampler) and sampler.context is model.roi_head
    check_detections(model, inputs, expected)
    losses = check_losses_and_grads(model, inputs, expected)
    assert "loss_carl" in losses


def test_sampler_weights_valid_negatives_by_importance(one_thread: Any) -> None:
    """On the golden's first image: negatives come in Score-HLR order, weights of the ranked
    ones decrease, the random fill-up ones share the smallest, and the weighted background
    loss of the negatives equals the unweighted one."""
    model, inputs, _ = load_golden("pisa")
    model.train()
    head = model.roi_head
    with torch.no_grad():
        x = model.extract_feat(inputs["img"])
        proposals = model.rpn_head.simple_test_rpn(x, metas(inputs))
        torch.manual_seed(0)
        results = head._assign_and_sample(
            x, proposals, inputs["gt_bboxes"], inputs["gt_labels"], None
        )
        res = results[0]
        weights = res.neg_label_weights
        assert weights is not None and len(weights) == len(res.neg_inds) == 512 - len(res.pos_inds)
        feats = [lvl[:1] for lvl in x]
        out = head._bbox_forward(
            feats, torch.cat([res.neg_bboxes.new_zeros(len(weights), 1), res.neg_bboxes], 1)
        )
        scores = out["cls_score"].softmax(-1)[:, :-1].max(-1).values
        num_valid = int((scores > head.bbox_sampler.score_thr).sum())
        assert 0 < num_valid < len(weights)  # both ranked and random negatives
        assert bool((scores[:num_valid] > 0.05).all()) and bool((scores[num_valid:] <= 0.05).all())
        assert bool((weights[: num_valid - 1] >= weights[1:num_valid]).all())
        assert torch.allclose(weights[num_valid:], weights[num_valid - 1 :].min())
        labels = torch.full((len(weights),), 80)
        loss = CrossEntropyLoss()(out["cls_score"], labels, reduction_override="none")
        assert float((loss * weights).sum()) == pytest.approx(float(loss.sum()), rel=1e-5)


def test_sampler_needs_its_roi_head() -> None:
    sampler = ScoreHLRSampler(num=4, pos_fraction=0.5, add_gt_as_proposals=False)
    assign = AssignResult(1, torch.tensor([1, 0, 0]), torch.zeros(3))
    with pytest.raises(RuntimeError, match="PISARoIHead"):
        sampler.sample(assign, torch.rand(3, 4) * 10, torch.rand(1, 4))


def test_nms_match_groups_by_greedy_nms() -> None:
    dets = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0, 0.5],
            [0.0, 0.0, 10.0, 9.0, 0.9],  # IoU 0.9 with box 0
            [30.0, 30.0, 40.0, 40.0, 0.7],
            [0.0, 0.0, 10.0, 5.0, 0.6],  # IoU 0.5 with box 0, 5/9 with box 1
        ]
    )
    assert [g.tolist() for g in nms_match(dets, 0.5)] == [[1, 3, 0], [2]]  # members in score order
    assert [g.tolist() for g in nms_match(dets, 0.6)] == [[1, 0], [2], [3]]
    assert nms_match(torch.zeros(0, 5), 0.5) == []


def test_isr_p_ranks_positives_within_their_ground_truth() -> None:
    """Three positives of one class on one ground truth: IoU ranks 0, 1, 2 give weights
    (3 - r) / 3 squared, rescaled so the weighted classification loss keeps its value."""
    coder = DeltaXYWHBBoxCoder(target_stds=[1.0, 1.0, 1.0, 1.0])
    rois = torch.tensor([[0, 0.0, 0.0, 10.0, 10.0]]).repeat(4, 1)
    labels = torch.tensor([2, 2, 2, 3])  # 3 = background (num_class 3)
    deltas = torch.zeros(4, 4)
    pred = torch.zeros(4, 4)
    pred[1, 2] = 0.5  # worse IoU than row 0
    pred[2, 2] = 1.0  # worst
    cls_score = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    res = type("R", (), {"pos_assigned_gt_inds": torch.tensor([0, 0, 0])})()
    loss = CrossEntropyLoss()
    _, w, _, _ = isr_p(
        cls_score,
        pred,
        (labels, torch.ones(4), deltas, torch.zeros(4, 4)),
        rois,
        [res],
        loss,
        coder,
        k=2,
        bias=0,
        num_class=3,
    )
    raw = torch.tensor([1.0, (2 / 3) ** 2, (1 / 3) ** 2])
    per = loss(cls_score[:3], labels[:3], reduction_override="none")
    ratio = per.sum() / (per * raw).sum()
    assert torch.allclose(w[:3], raw * ratio) and float(w[3]) == 1.0


def test_carl_weights_regression_by_score() -> None:
    cls_score = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1])
    pred = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0]])
    targets = torch.zeros(2, 4)
    out = carl_loss(
        cls_score, labels, pred, targets, SmoothL1Loss(beta=1.0), k=1, bias=0.2, num_class=2
    )["loss_carl"]
    p = cls_score.detach().softmax(-1)[[0, 1], [0, 1]]
    w = 0.2 + 0.8 * p
    w = w * 2 / w.sum()
    assert float(out.detach()) == pytest.approx(float((w * torch.tensor([0.5, 1.5])).sum() / 2))
    out.backward()
    assert cls_score.grad is not None and cls_score.grad.abs().sum() > 0
    none = carl_loss(cls_score, torch.tensor([2, 2]), pred, targets, SmoothL1Loss(), num_class=2)
    assert float(none["loss_carl"]) == 0


def test_full_size_layout() -> None:
    config = V2_CONFIGS / "pisa" / "pisa_faster_rcnn_r50_fpn_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    expected = json.loads(
        (GOLDENS / "pisa" / "layout_pisa_faster_rcnn_r50_fpn_1x.json").read_text()
    )
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert isinstance(model.roi_head, PISARoIHead)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]


def test_retinanet_golden(one_thread: Any) -> None:
    model, inputs, expected = load_golden("pisa_retinanet", fixture="retinanet")
    assert isinstance(model.bbox_head, PISARetinaHead)
    check_detections(model, inputs, expected)
    check_losses_and_grads(model, inputs, expected)
    # without isr/carl the head's losses are RetinaNet's (summed over the levels)
    model.bbox_head.train_cfg = {
        k: v for k, v in model.bbox_head.train_cfg.items() if k not in ("isr", "carl")
    }
    pisa = train_losses(model, inputs)
    plain = RetinaHead.loss(
        model.bbox_head,
        *model.bbox_head(model.extract_feat(inputs["img"])),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        metas(inputs),
    )
    assert set(pisa) == {"loss_cls", "loss_bbox"}
    for name in pisa:
        assert float(pisa[name].detach()) == pytest.approx(
            float(sum(plain[name]).detach()), rel=1e-5
        )


def test_retinanet_full_size_layout() -> None:
    config = V2_CONFIGS / "pisa" / "pisa_retinanet_r50_fpn_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    path = GOLDENS / "pisa_retinanet" / "layout_pisa_retinanet_r50_fpn_1x.json"
    expected = json.loads(path.read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
