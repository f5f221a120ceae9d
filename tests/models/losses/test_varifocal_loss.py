"""VarifocalLoss against a slow float64 reference of the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.losses import VarifocalLoss, varifocal_loss
from detforge.registry import MODELS, build_module


def _vfl_reference(
    logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float, iou_weighted: bool
) -> torch.Tensor:
    out = torch.zeros(logits.shape, dtype=torch.float64)
    for i in range(logits.size(0)):
        for c in range(logits.size(1)):
            p = 1 / (1 + math.exp(-float(logits[i, c])))
            q = float(target[i, c])
            bce = -(q * math.log(p) + (1 - q) * math.log(1 - p))
            if q > 0:
                out[i, c] = bce * (q if iou_weighted else 1.0)
            else:
                out[i, c] = bce * alpha * p**gamma
    return out


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(9, 4, generator=gen) * 2
    target = torch.zeros(9, 4)
    rows = torch.tensor([0, 2, 3, 7])
    cols = torch.tensor([1, 0, 3, 2])
    target[rows, cols] = torch.rand(4, generator=gen) * 0.9 + 0.05
    return logits, target


@pytest.mark.parametrize(
    ("alpha", "gamma", "iou_weighted"), [(0.75, 2.0, True), (0.5, 1.5, False), (0.0, 2.0, True)]
)
def test_matches_reference(alpha: float, gamma: float, iou_weighted: bool) -> None:
    logits, target = _inputs()
    ref = _vfl_reference(logits, target, alpha, gamma, iou_weighted)
    loss = build_module(
        dict(type="VarifocalLoss", alpha=alpha, gamma=gamma, iou_weighted=iou_weighted), MODELS
    )
    torch.testing.assert_close(
        loss(logits, target, reduction_override="none").double(), ref, rtol=1e-5, atol=1e-7
    )
    torch.testing.assert_close(loss(logits, target).double(), ref.mean(), rtol=1e-5, atol=0)
    torch.testing.assert_close(
        loss(logits, target, reduction_override="sum").double(), ref.sum(), rtol=1e-5, atol=0
    )


def test_weight_avg_factor_and_loss_weight() -> None:
    logits, target = _inputs(1)
    ref = _vfl_reference(logits, target, 0.75, 2.0, True)
    weight = torch.rand(9, 4, generator=torch.Generator().manual_seed(2))
    got = VarifocalLoss(loss_weight=2.0)(logits, target, weight, avg_factor=3.0)
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(
        got.double(), 2.0 * (ref * weight.double()).sum() / (3.0 + eps), rtol=1e-5, atol=0
    )


def test_only_negatives_are_down_weighted() -> None:
    # a confident wrong negative costs alpha * p**gamma of its BCE; a positive costs q * BCE
    logits = torch.tensor([[2.0, 2.0]])
    target = torch.tensor([[0.8, 0.0]])
    none = varifocal_loss(logits, target, reduction="none")
    p = 1 / (1 + math.exp(-2.0))
    assert float(none[0, 0]) == pytest.approx(0.8 * -(0.8 * math.log(p) + 0.2 * math.log(1 - p)))
    assert float(none[0, 1]) == pytest.approx(0.75 * p**2 * -math.log(1 - p), rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        varifocal_loss(logits, target[:, :1])
    with pytest.raises(NotImplementedError):
        VarifocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match="alpha"):
        VarifocalLoss(alpha=-0.1)
