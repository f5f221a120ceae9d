"""OHEMSampler: keeps the highest-loss candidates (v2's ``hard_mining``), scores negatives as
background, takes everything when there are few, and gets its scorer from the RoI head."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from detforge.models.roi_heads import StandardRoIHead
from detforge.models.roi_heads.base_roi_head import assign_and_sample, hard_mining
from detforge.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from detforge.models.task_modules.samplers import HardMining, OHEMSampler
from detforge.registry import TASK_UTILS, build_module
from detforge.structures.bbox import bbox2roi


def _scorer(seen: list[Any]) -> HardMining:
    def losses(feats: Any, bboxes: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(labels.tolist())
        return {"loss_cls": bboxes[:, 2] - bboxes[:, 0], "loss_small": -bboxes[:, 3]}

    return HardMining(losses, background_label=7)


def test_keeps_the_hardest_and_scores_negatives_as_background() -> None:
    gt_inds = torch.tensor([1, 1, 1, 0, 0, 0, 0, -1])
    labels = torch.tensor([4, 4, 4, -1, -1, -1, -1, -1])
    assign = AssignResult(1, gt_inds, torch.zeros(8), labels=labels)
    widths = torch.tensor([3.0, 9.0, 5.0, 1.0, 8.0, 2.0, 6.0, 99.0])
    boxes = torch.stack([torch.zeros(8), torch.zeros(8), widths, widths], 1)
    seen: list[Any] = []
    sampler = build_module(
        dict(type="OHEMSampler", num=4, pos_fraction=0.5, add_gt_as_proposals=False), TASK_UTILS
    )
    res = sampler.sample(assign, boxes, boxes[:1], feats=[], hard_mining=_scorer(seen))
    assert res.pos_inds.tolist() == [1, 2]  # widths 9 and 5; the ignored one never competes
    assert res.neg_inds.tolist() == [4, 6]  # widths 8 and 6
    assert seen == [[4, 4, 4], [7, 7, 7, 7]]
    other = OHEMSampler(num=4, pos_fraction=0.5, add_gt_as_proposals=False, loss_key="loss_small")
    res = other.sample(assign, boxes, boxes[:1], feats=[], hard_mining=_scorer([]))
    assert res.pos_inds.tolist() == [0, 2]  # loss_key picks the ranking loss
    # few candidates: all taken, nothing scored
    seen.clear()
    res = OHEMSampler(num=100, pos_fraction=0.5).sample(
        assign, boxes, boxes[:1], torch.tensor([4]), feats=[], hard_mining=_scorer(seen)
    )
    assert seen == [] and res.pos_inds.numel() == 4 and res.neg_inds.numel() == 4
    assert sampler._mining is None  # the scorer lived only for the call


def test_needs_the_heads_scorer() -> None:
    assign = AssignResult(1, torch.tensor([1, 0]), torch.zeros(2), labels=torch.tensor([0, -1]))
    with pytest.raises(ValueError, match="hard_mining"):
        OHEMSampler(num=1, pos_fraction=0.5).sample(assign, torch.rand(2, 4), torch.rand(1, 4))


def test_standard_roi_head_mines_with_its_box_branch() -> None:
    torch.manual_seed(0)
    head = StandardRoIHead(
        bbox_roi_extractor=dict(
            type="SingleRoIExtractor",
            out_channels=4,
            roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
            featmap_strides=[4],
        ),
        bbox_head=dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=8, num_classes=3),
        train_cfg=dict(
            assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
            sampler=dict(type="OHEMSampler", num=8, pos_fraction=0.25, add_gt_as_proposals=False),
            pos_weight=-1,
        ),
    )
    x = [torch.randn(1, 4, 16, 16)]
    xy = torch.rand(40, 2) * 40
    proposals = torch.cat([xy, xy + torch.rand(40, 2) * 20 + 4], 1)
    gt = torch.tensor([[10.0, 10.0, 40.0, 40.0]])
    results = assign_and_sample(
        head.bbox_assigner,
        head.bbox_sampler,
        x,
        [proposals],
        [gt],
        [torch.tensor([1])],
        mining=hard_mining(head._bbox_forward, head.bbox_head),
    )
    assign = MaxIoUAssigner(0.5, 0.5, 0.5).assign(proposals, gt, None, torch.tensor([1]))
    neg = torch.nonzero(assign.gt_inds == 0).squeeze(1)
    with torch.no_grad():
        scores = head._bbox_forward(x, bbox2roi([proposals[neg]]))["cls_score"]
    loss = torch.nn.functional.cross_entropy(scores, torch.full((len(neg),), 3), reduction="none")
    hardest = neg[loss.topk(results[0].neg_inds.numel()).indices].sort().values
    assert results[0].neg_inds.tolist() == hardest.tolist()
    assert results[0].neg_inds.numel() == 8 - results[0].pos_inds.numel()
    # forward_train runs with it (the scorer comes from the head)
    losses = head.forward_train(x, [{}], [proposals], [gt], [torch.tensor([1])])
    assert losses["loss_cls"].isfinite()
