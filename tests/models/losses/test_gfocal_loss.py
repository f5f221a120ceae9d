"""QualityFocalLoss and DistributionFocalLoss against slow float64 references."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.losses import (
    DistributionFocalLoss,
    QualityFocalLoss,
    distribution_focal_loss,
    quality_focal_loss,
)
from detforge.registry import MODELS, build_module


def _bce(p: float, t: float) -> float:
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def _qfl_reference(
    logits: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, beta: float
) -> torch.Tensor:
    """Per-prior QFL in float64, element by element from the paper's formula."""
    out = torch.zeros(logits.size(0), dtype=torch.float64)
    for i in range(logits.size(0)):
        for c in range(logits.size(1)):
            p = 1 / (1 + math.exp(-float(logits[i, c])))
            t = float(scores[i]) if int(labels[i]) == c else 0.0
            out[i] += _bce(p, t) * abs(t - p) ** beta
    return out


def _dfl_reference(logits: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(logits.size(0), dtype=torch.float64)
    for i in range(logits.size(0)):
        row = [float(v) for v in logits[i]]
        log_z = math.log(sum(math.exp(v) for v in row))
        y = float(dist[i])
        left = math.floor(y)
        out[i] = (log_z - row[left]) * (left + 1 - y) + (log_z - row[left + 1]) * (y - left)
    return out


def _qfl_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(10, 5, generator=gen) * 2
    labels = torch.randint(0, 6, (10,), generator=gen)  # 5 = background
    labels[:3] = torch.tensor([0, 4, 2])
    scores = torch.rand(10, generator=gen)
    scores[labels == 5] = 0
    return logits, labels, scores


@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5])
def test_qfl_matches_reference(beta: float) -> None:
    logits, labels, scores = _qfl_inputs()
    ref = _qfl_reference(logits, labels, scores, beta)
    loss = build_module(dict(type="QualityFocalLoss", beta=beta), MODELS)
    got = loss(logits, (labels, scores), reduction_override="none")
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(
        loss(logits, (labels, scores)).double(), ref.mean(), rtol=1e-5, atol=0
    )


def test_qfl_weight_avg_factor_loss_weight_and_activated() -> None:
    logits, labels, scores = _qfl_inputs(1)
    ref = _qfl_reference(logits, labels, scores, 2.0)
    weight = torch.rand(10, generator=torch.Generator().manual_seed(3))
    eps = torch.finfo(torch.float32).eps
    got = QualityFocalLoss(loss_weight=0.5)(logits, (labels, scores), weight, avg_factor=4.0)
    want = 0.5 * (ref * weight.double()).sum() / (4.0 + eps)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)
    # activated=True takes probabilities and gives the same numbers
    prob = logits.sigmoid()
    activated = QualityFocalLoss(activated=True)(prob, (labels, scores), reduction_override="sum")
    torch.testing.assert_close(activated.double(), ref.sum(), rtol=1e-4, atol=0)
    # a dense [N, C] target with the score at the label gives the same numbers
    dense = torch.zeros(10, 5)
    pos = labels < 5
    dense[pos.nonzero().squeeze(1), labels[pos]] = scores[pos]
    dense_loss = QualityFocalLoss()(logits, dense, reduction_override="none")
    # zero-score positives count as negatives in the dense form, which is the same loss
    torch.testing.assert_close(dense_loss.double(), ref, rtol=1e-5, atol=1e-7)


def test_qfl_perfect_prediction_is_nearly_free_and_gradient_flows() -> None:
    labels = torch.tensor([1, 2])  # 2 = background with 2 classes
    scores = torch.tensor([0.9, 0.0])
    logits = torch.tensor([[-20.0, math.log(0.9 / 0.1)], [-20.0, -20.0]], requires_grad=True)
    loss = quality_focal_loss(logits, (labels, scores), reduction="sum")
    assert float(loss.detach()) < 1e-6
    wrong = torch.tensor([[3.0, -3.0], [2.0, 0.0]], requires_grad=True)
    worse = quality_focal_loss(wrong, (labels, scores), reduction="sum")
    worse.backward()
    assert float(worse.detach()) > 1.0
    assert wrong.grad is not None and torch.all(wrong.grad[0] != 0)


def test_qfl_rejects_bad_targets() -> None:
    logits, labels, scores = _qfl_inputs()
    with pytest.raises(TypeError, match="pair"):
        quality_focal_loss(logits, labels)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        quality_focal_loss(logits, (labels[:3], scores))
    with pytest.raises(NotImplementedError, match="use_sigmoid"):
        QualityFocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match="reduction"):
        QualityFocalLoss(reduction="avg")


def test_dfl_matches_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 17, generator=gen) * 2
    dist = torch.rand(12, generator=gen) * 15.9
    dist[0] = 0.0
    dist[1] = 15.9  # GFL clamps targets to reg_max - 0.1
    dist[2] = 7.0  # an integer target puts all the weight on one bin
    ref = _dfl_reference(logits, dist)
    loss = build_module(dict(type="DistributionFocalLoss", loss_weight=0.25), MODELS)
    got = loss(logits, dist, reduction_override="none")
    torch.testing.assert_close(got.double(), 0.25 * ref, rtol=1e-5, atol=1e-6)
    weight = torch.rand(12, generator=gen)
    got = DistributionFocalLoss()(logits, dist, weight, avg_factor=4.0)
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(
        got.double(), (ref * weight.double()).sum() / (4.0 + eps), rtol=1e-5, atol=0
    )


def test_dfl_literal_and_minimum() -> None:
    # uniform logits over 3 bins: CE = log 3 for both neighbours, whatever the split
    assert float(distribution_focal_loss(torch.zeros(1, 3), torch.tensor([1.25]))) == (
        pytest.approx(math.log(3), rel=1e-6)
    )
    # the loss is smallest when the two neighbouring bins hold the target's split
    target = torch.tensor([2.3])
    best = torch.full((1, 5), -30.0)
    best[0, 2], best[0, 3] = math.log(0.7), math.log(0.3)
    skewed = best.clone()
    skewed[0, 2], skewed[0, 3] = math.log(0.3), math.log(0.7)
    assert float(distribution_focal_loss(best, target)) < float(
        distribution_focal_loss(skewed, target)
    )
    with pytest.raises(ValueError, match="label"):
        distribution_focal_loss(torch.zeros(2, 3), torch.zeros(3))
