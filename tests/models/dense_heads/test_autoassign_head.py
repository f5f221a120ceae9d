"""AutoAssign's CenterPrior: a Gaussian of the offset from the box centre in strides, 0 off the
candidates; force_topk gives boxes without inside points their best-prior points."""

from __future__ import annotations

import math

import torch

from detforge.models.dense_heads.autoassign_head import CenterPrior, points_inside_boxes


def test_prior_is_the_class_gaussian_and_zero_outside() -> None:
    prior_module = CenterPrior(num_classes=2, strides=[8])
    points = torch.tensor([[8.0, 8.0], [16.0, 8.0], [40.0, 40.0]])
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0]])  # centre (8, 8)
    inside, _ = points_inside_boxes(points, boxes)
    prior, mask = prior_module([points], boxes, torch.tensor([1]), inside)
    assert mask.view(-1).tolist() == [True, False, False]  # (16, 8) is on the border
    assert prior.view(-1).tolist() == [1.0, 0.0, 0.0]
    with torch.no_grad():
        prior_module.sigma[1] = 2.0
    points = torch.tensor([[16.0 - 1e-3, 8.0]])
    inside, _ = points_inside_boxes(points, boxes)
    prior, _ = prior_module([points], boxes, torch.tensor([1]), inside)
    # one stride off in x, sigma 2: exp(-1 / 8)
    assert math.isclose(float(prior.detach()), math.exp(-((1 - 1e-3 / 8) ** 2) / 8), rel_tol=1e-5)


def test_force_topk_for_a_box_without_inside_points() -> None:
    prior_module = CenterPrior(force_topk=True, topk=2, num_classes=1, strides=[8])
    points = torch.tensor([[0.0, 0.0], [8.0, 0.0], [16.0, 0.0], [24.0, 0.0]])
    boxes = torch.tensor([[9.0, 1.0, 11.0, 3.0]])  # no point strictly inside
    inside, _ = points_inside_boxes(points, boxes)
    assert not inside.any()
    prior, mask = prior_module([points], boxes, torch.tensor([0]), inside)
    assert mask.view(-1).tolist() == [False, True, True, False]
    assert (prior.view(-1)[[0, 3]] == 0).all() and (prior.view(-1)[[1, 2]] > 0).all()
