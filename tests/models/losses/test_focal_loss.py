"""FocalLoss against a slow transcription of mmcv's sigmoid_focal_loss kernel."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.losses import FocalLoss, py_focal_loss_with_prob, sigmoid_focal_loss
from detforge.registry import MODELS, build_module


def _mmcv_kernel(
    pred: torch.Tensor, target: torch.Tensor, gamma: float, alpha: float
) -> torch.Tensor:
    """mmcv's per-element formula, looping in float64: target == c is the positive class."""
    out = torch.zeros(pred.shape, dtype=torch.float64)
    for i in range(pred.size(0)):
        for c in range(pred.size(1)):
            p = 1 / (1 + math.exp(-float(pred[i, c])))
            if int(target[i]) == c:
                out[i, c] = -alpha * (1 - p) ** gamma * math.log(max(p, 1.1754944e-38))
            else:
                out[i, c] = -(1 - alpha) * p**gamma * math.log(max(1 - p, 1.1754944e-38))
    return out


def _inputs(num: int = 12, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(num, classes, generator=gen) * 3
    target = torch.randint(0, classes + 1, (num,), generator=gen)  # classes = background
    return pred, target


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (1.5, 0.5), (0.0, 0.75)])
def test_matches_mmcv_kernel(gamma: float, alpha: float) -> None:
    pred, target = _inputs()
    ref = _mmcv_kernel(pred, target, gamma, alpha)
    loss = build_module(dict(type="FocalLoss", gamma=gamma, alpha=alpha), MODELS)
    none = loss(pred, target, reduction_override="none")
    torch.testing.assert_close(none.double(), ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss(pred, target).double(), ref.mean(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(
        loss(pred, target, reduction_override="sum").double(), ref.sum(), rtol=1e-5, atol=1e-7
    )
    torch.testing.assert_close(
        sigmoid_focal_loss(pred, target, gamma=gamma, alpha=alpha, reduction="sum").double(),
        ref.sum(),
        rtol=1e-5,
        atol=1e-7,
    )


def test_weights_avg_factor_and_loss_weight() -> None:
    pred, target = _inputs()
    ref = _mmcv_kernel(pred, target, 2.0, 0.25).float()
    loss = FocalLoss(loss_weight=3.0)
    per_prior = torch.rand(12, generator=torch.Generator().manual_seed(1))
    eps = torch.finfo(torch.float32).eps
    expected = 3 * (ref * per_prior[:, None]).sum() / (5 + eps)
    torch.testing.assert_close(loss(pred, target, per_prior, avg_factor=5), expected)
    per_element = torch.rand(12, 4, generator=torch.Generator().manual_seed(2))
    expected = 3 * (ref * per_element).mean()
    torch.testing.assert_close(loss(pred, target, per_element), expected)
    torch.testing.assert_close(loss(pred, target, per_element.reshape(-1)), expected)
    with pytest.raises(ValueError, match="does not fit"):
        loss(pred, target, torch.ones(7))


def test_one_hot_targets_and_activated() -> None:
    pred, target = _inputs()
    one_hot = torch.nn.functional.one_hot(target, 5)[:, :4]
    loss = FocalLoss()
    torch.testing.assert_close(loss(pred, one_hot), loss(pred, target))
    probs = pred.sigmoid()
    activated = FocalLoss(activated=True)
    torch.testing.assert_close(activated(probs, target), loss(pred, target), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(
        py_focal_loss_with_prob(probs, one_hot), py_focal_loss_with_prob(probs, target)
    )


def test_saturated_logits_stay_finite() -> None:
    pred = torch.tensor([[120.0, -120.0]])
    out = FocalLoss()(pred, torch.tensor([1]), reduction_override="none")
    assert torch.isfinite(out).all()
    # a confident wrong positive: (1 - alpha) * 1 * 120 and alpha * 1 * 120
    torch.testing.assert_close(out, torch.tensor([[0.75 * 120.0, 0.25 * 120.0]]))


def test_use_sigmoid_false_and_empty() -> None:
    with pytest.raises(NotImplementedError):
        FocalLoss(use_sigmoid=False)
    pred = torch.zeros(0, 4, requires_grad=True)
    out = FocalLoss()(pred, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0
    out.backward()
    assert pred.grad is not None
