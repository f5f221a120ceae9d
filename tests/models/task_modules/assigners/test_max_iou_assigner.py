"""MaxIoUAssigner: MMDetection's literal assignments, ignore boxes, empty inputs, CPU fallback."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from detforge.models.task_modules.iou_calculators import BboxOverlaps2D
from detforge.registry import TASK_UTILS, build_module

BBOXES = torch.tensor(
    [[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 20.0, 20.0], [5.0, 5.0, 15.0, 15.0], [32, 32, 38, 42]]
)
GTS = torch.tensor([[0.0, 0.0, 10.0, 9.0], [0.0, 10.0, 10.0, 19.0]])
LABELS = torch.tensor([2, 3])


def test_mmdet_case() -> None:
    assigner = build_module(
        dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5), TASK_UTILS
    )
    result = assigner.assign(BBOXES, GTS, gt_labels=LABELS)
    assert result.gt_inds.tolist() == [1, 0, 2, 0]  # box 2 is gt 2's best match (low quality)
    assert result.labels is not None and result.labels.tolist() == [2, -1, 3, -1]
    assert result.num_gts == 2 and result.num_preds == 4
    torch.testing.assert_close(result.max_overlaps[0], torch.tensor(0.9))
    assert result.gt_inds.dtype == torch.int64


def test_low_quality_matching_can_be_disabled() -> None:
    result = MaxIoUAssigner(0.5, 0.5, match_low_quality=False).assign(BBOXES, GTS)
    assert result.gt_inds.tolist() == [1, 0, 0, 0]
    assert result.labels is None
    result = MaxIoUAssigner(0.5, 0.5, min_pos_iou=0.2).assign(BBOXES, GTS)
    assert result.gt_inds.tolist() == [1, 0, 0, 0]  # gt 2's best IoU (~0.15) < min_pos_iou


def test_gt_max_assign_all() -> None:
    priors = torch.tensor([[0.0, 0.0, 4.0, 4.0], [6.0, 0.0, 10.0, 4.0], [50.0, 50.0, 60.0, 60.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 4.0]])  # both priors tie at IoU 0.4
    all_ties = MaxIoUAssigner(0.5, 0.3).assign(priors, gt)
    assert all_ties.gt_inds.tolist() == [1, 1, 0]
    first_only = MaxIoUAssigner(0.5, 0.3, gt_max_assign_all=False).assign(priors, gt)
    assert first_only.gt_inds.tolist() == [1, -1, 0]


def test_negative_range_pair() -> None:
    result = MaxIoUAssigner(0.5, (0.1, 0.5), match_low_quality=False).assign(BBOXES, GTS)
    # box 2 (IoU ~0.15) is negative; boxes 1 and 3 (IoU 0) are below the range: ignored
    assert result.gt_inds.tolist() == [1, -1, 0, -1]
    with pytest.raises(ValueError, match="neg_iou_thr"):
        MaxIoUAssigner(0.5, "low")


def test_thresholds_changed_after_construction_take_effect() -> None:
    """Dynamic R-CNN moves the thresholds during training (it sets the attributes, as v2)."""
    assigner = MaxIoUAssigner(0.5, 0.5, match_low_quality=False)
    assigner.pos_iou_thr = assigner.neg_iou_thr = 0.1
    assert assigner.assign(BBOXES, GTS).gt_inds.tolist() == [1, 0, 2, 0]  # box 2: IoU ~0.15
    assigner.neg_iou_thr = (0.1, 0.5)
    assigner.pos_iou_thr = 0.5
    assert assigner.assign(BBOXES, GTS).gt_inds.tolist() == [1, -1, 0, -1]


@pytest.mark.parametrize("wrt_candidates", [True, False])
def test_ignore_boxes(wrt_candidates: bool) -> None:
    assigner = MaxIoUAssigner(
        pos_iou_thr=0.5, neg_iou_thr=0.5, ignore_iof_thr=0.5, ignore_wrt_candidates=wrt_candidates
    )
    bboxes = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 20.0, 20.0], [5.0, 5.0, 15.0, 15.0], [30, 32, 40, 42]]
    )
    result = assigner.assign(bboxes, GTS, gt_bboxes_ignore=torch.tensor([[30.0, 30.0, 40.0, 40.0]]))
    assert result.gt_inds.tolist() == [1, 0, 2, -1]
    empty_ignore = assigner.assign(bboxes, GTS, gt_bboxes_ignore=torch.zeros(0, 4))
    assert empty_ignore.gt_inds.tolist() == [1, 0, 2, 0]


def test_empty_gt_and_empty_boxes() -> None:
    assigner = MaxIoUAssigner(0.5, 0.5)
    no_gt = assigner.assign(BBOXES, torch.zeros(0, 4), gt_labels=torch.zeros(0, dtype=torch.long))
    assert no_gt.gt_inds.tolist() == [0, 0, 0, 0] and no_gt.num_gts == 0
    assert no_gt.labels is not None and no_gt.labels.tolist() == [-1] * 4
    assert no_gt.max_overlaps.tolist() == [0.0] * 4
    no_boxes = assigner.assign(torch.zeros(0, 4), GTS, gt_labels=LABELS)
    assert no_boxes.gt_inds.shape == (0,) and no_boxes.labels is not None
    assert no_boxes.labels.shape == (0,)
    neither = assigner.assign(torch.zeros(0, 4), torch.zeros(0, 4))
    assert neither.gt_inds.shape == (0,) and neither.labels is None


def test_gpu_assign_thr_fallback_gives_the_same_result() -> None:
    ignore = torch.tensor([[30.0, 30.0, 40.0, 40.0]])
    reference = MaxIoUAssigner(0.5, 0.5, ignore_iof_thr=0.5).assign(
        BBOXES, GTS, gt_bboxes_ignore=ignore, gt_labels=LABELS
    )
    fallback = MaxIoUAssigner(0.5, 0.5, ignore_iof_thr=0.5, gpu_assign_thr=1).assign(
        BBOXES, GTS, gt_bboxes_ignore=ignore, gt_labels=LABELS
    )
    assert torch.equal(fallback.gt_inds, reference.gt_inds)
    assert torch.equal(fallback.max_overlaps, reference.max_overlaps)
    assert fallback.labels is not None and reference.labels is not None
    assert torch.equal(fallback.labels, reference.labels)
    assert fallback.gt_inds.device == BBOXES.device


def test_iou_calculator_instance_and_overlaps_input() -> None:
    assigner = MaxIoUAssigner(0.5, 0.5, iou_calculator=BboxOverlaps2D())
    assert assigner.assign(BBOXES, GTS).gt_inds.tolist() == [1, 0, 2, 0]
    overlaps = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.3, 0.7]])
    result = assigner.assign_wrt_overlaps(overlaps, torch.tensor([4, 5]))
    # prior 2 prefers gt 2 (0.7); gt 1's best prior is prior 0
    assert result.gt_inds.tolist() == [1, 0, 2]
    assert result.labels is not None and result.labels.tolist() == [4, -1, 5]


def test_assign_result_add_gt_and_info() -> None:
    result = AssignResult(2, torch.tensor([0, 2]), torch.tensor([0.1, 0.8]), torch.tensor([-1, 6]))
    result.add_gt_(torch.tensor([5, 6]))
    assert result.gt_inds.tolist() == [1, 2, 0, 2]
    assert result.max_overlaps.tolist() == pytest.approx([1.0, 1.0, 0.1, 0.8])
    assert result.labels is not None and result.labels.tolist() == [5, 6, -1, 6]
    result.set_extra_property("scores", torch.ones(4))
    assert result.get_extra_property("scores") is not None
    assert result.info["num_preds"] == 4 and "scores" in result.info
    with pytest.raises(KeyError):
        result.set_extra_property("gt_inds", None)
    assert "num_gts=2" in repr(result)
