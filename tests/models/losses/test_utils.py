"""weight_reduce_loss / weighted_loss: MMDetection v2's reduction rules."""

from __future__ import annotations

import pytest
import torch

from detforge.models.losses import reduce_loss, weight_reduce_loss, weighted_loss

LOSS = torch.tensor([[1.0, 2.0], [3.0, 4.0]])


def test_reductions() -> None:
    assert reduce_loss(LOSS, "none") is LOSS
    assert reduce_loss(LOSS, "mean").item() == 2.5
    assert reduce_loss(LOSS, "sum").item() == 10.0
    with pytest.raises(ValueError, match="reduction"):
        reduce_loss(LOSS, "max")


def test_weight_and_avg_factor() -> None:
    weight = torch.tensor([[1.0], [0.0]])  # broadcast over the last axis
    assert weight_reduce_loss(LOSS, weight, "sum").item() == 3.0
    assert weight_reduce_loss(LOSS, weight, "mean").item() == 0.75  # mean over all 4 entries
    eps = torch.finfo(torch.float32).eps
    out = weight_reduce_loss(LOSS, weight, "mean", avg_factor=2.0)
    assert out.item() == pytest.approx(3.0 / (2.0 + eps))
    assert torch.equal(weight_reduce_loss(LOSS, weight, "none", avg_factor=2.0), LOSS * weight)
    assert weight_reduce_loss(LOSS * 0, None, "mean", avg_factor=0).item() == 0.0
    with pytest.raises(ValueError, match="avg_factor"):
        weight_reduce_loss(LOSS, None, "sum", avg_factor=2.0)


def test_empty_mean_is_zero_with_gradient() -> None:
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = weight_reduce_loss(pred * 2, None, "mean")
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None and pred.grad.shape == (0, 4)


def test_weighted_loss_decorator() -> None:
    @weighted_loss
    def abs_diff(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return (pred - target).abs() * scale

    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.zeros(3)
    assert abs_diff(pred, target).item() == pytest.approx(7 / 3)
    assert abs_diff(pred, target, torch.tensor([1.0, 0.0, 1.0]), reduction="sum").item() == 5
    assert abs_diff(pred, target, reduction="sum", scale=2.0).item() == 14
    assert abs_diff(pred, target, avg_factor=7).item() == pytest.approx(1.0)
    assert abs_diff.__name__ == "abs_diff"
