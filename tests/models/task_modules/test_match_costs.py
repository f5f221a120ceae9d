"""Match costs against numbers worked out by hand (softmax, focal terms, L1, IoU/GIoU)."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.errors import ConfigValueError
from detforge.models.task_modules.match_costs import (
    BBoxL1Cost,
    ClassificationCost,
    FocalLossCost,
    IoUCost,
)
from detforge.registry import TASK_UTILS, build_module

# p = sigmoid(0) = 0.5: pos = -ln(0.5) * 0.25 * 0.5**2, neg = -ln(0.5) * 0.75 * 0.5**2
_POS = math.log(2) * 0.25 * 0.25
_NEG = math.log(2) * 0.75 * 0.25


def test_classification_cost_is_minus_weighted_softmax_at_the_labels() -> None:
    cost = ClassificationCost(weight=2.0)
    out = cost(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), torch.tensor([2, 0]))
    expected = [[-2 * 0.66524096, -2 * 0.09003057], [-2 / 3, -2 / 3]]
    torch.testing.assert_close(out, torch.tensor(expected), atol=1e-6, rtol=0)


def test_focal_loss_cost_is_pos_minus_neg_at_the_labels() -> None:
    out = FocalLossCost(weight=2.0)(torch.tensor([[0.0, 50.0]]), torch.tensor([0, 1, 1]))
    # logit 50: p = 1, pos ~ 0, neg = -ln(eps) * 0.75 with eps = 1e-12
    sure = -2 * 0.75 * 12 * math.log(10)
    expected = [[2 * (_POS - _NEG), sure, sure]]
    torch.testing.assert_close(out, torch.tensor(expected), atol=1e-4, rtol=1e-5)


def test_focal_loss_cost_binary_input_averages_over_pixels() -> None:
    cost = FocalLossCost(binary_input=True)
    pred = torch.zeros(2, 2, 2)  # two queries, 2x2 masks of logit 0
    gts = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 1]]])
    out = cost(pred, gts)
    expected = [(_POS + 3 * _NEG) / 4, _POS]
    torch.testing.assert_close(out, torch.tensor([expected, expected]), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("box_format", "expected"), [("xyxy", 0.2), ("xywh", 0.3)])
def test_bbox_l1_cost_box_formats(box_format: str, expected: float) -> None:
    # prediction cx,cy,w,h = (.5,.5,.2,.2) is corners (.4,.4,.6,.6); the truth (.4,.4,.6,.8)
    # is centre (.5,.6,.2,.4)
    cost = BBoxL1Cost(weight=3.0, box_format=box_format)
    out = cost(torch.tensor([[0.5, 0.5, 0.2, 0.2]]), torch.tensor([[0.4, 0.4, 0.6, 0.8]]))
    torch.testing.assert_close(out, torch.tensor([[3 * expected]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("iou_mode", "expected"),
    [("giou", [[-0.125, 1 / 6], [1 / 6, -0.5]]), ("iou", [[-0.125, 0.0], [0.0, -0.5]])],
)
def test_iou_cost_modes(iou_mode: str, expected: list[list[float]]) -> None:
    boxes = torch.tensor([[1.0, 1.0, 2.0, 2.0], [2.0, 2.0, 3.0, 4.0]])
    gts = torch.tensor([[0.0, 0.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    out = IoUCost(iou_mode=iou_mode, weight=1.0)(boxes, gts)
    torch.testing.assert_close(out, torch.tensor(expected), atol=1e-5, rtol=0)


def test_costs_build_from_task_utils_and_reject_bad_modes() -> None:
    cost = build_module(dict(type="FocalLossCost", weight=2.0), TASK_UTILS)
    assert isinstance(cost, FocalLossCost)
    assert cost.weight == 2.0
    with pytest.raises(ConfigValueError, match="box_format"):
        BBoxL1Cost(box_format="cxcywh")
    with pytest.raises(ConfigValueError, match="iou_mode"):
        IoUCost(iou_mode="diou")
