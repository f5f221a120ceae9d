"""L1, SmoothL1 and BalancedL1 losses against their formulas; shared reduction behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from detforge.models.losses import BalancedL1Loss, L1Loss, SmoothL1Loss
from detforge.registry import MODELS, build_module

GEN = torch.Generator().manual_seed(0)
PRED = torch.randn(6, 4, generator=GEN) * 2
TARGET = torch.randn(6, 4, generator=GEN) * 2


def _smooth_l1(d: float, beta: float) -> float:
    return 0.5 * d * d / beta if d < beta else d - 0.5 * beta


def _balanced_l1(d: float, alpha: float, gamma: float, beta: float) -> float:
    b = math.e ** (gamma / alpha) - 1
    if d < beta:
        return alpha / b * (b * d + 1) * math.log(b * d / beta + 1) - alpha * d
    return gamma * d + gamma / b - alpha * beta


def _elementwise(fn: object, *args: float) -> torch.Tensor:
    diff = (PRED - TARGET).abs().double().numpy()
    return torch.from_numpy(np.vectorize(lambda d: fn(d, *args))(diff))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("cfg", "reference"),
    [
        (dict(type="L1Loss"), lambda: (PRED - TARGET).abs().double()),
        (dict(type="SmoothL1Loss", beta=1.0), lambda: _elementwise(_smooth_l1, 1.0)),
        (dict(type="SmoothL1Loss", beta=0.3), lambda: _elementwise(_smooth_l1, 0.3)),
        (dict(type="BalancedL1Loss"), lambda: _elementwise(_balanced_l1, 0.5, 1.5, 1.0)),
        (
            dict(type="BalancedL1Loss", alpha=0.3, gamma=1.0, beta=0.5),
            lambda: _elementwise(_balanced_l1, 0.3, 1.0, 0.5),
        ),
    ],
)
def test_against_formula_with_every_reduction(cfg: dict, reference: object) -> None:
    ref = reference().float()  # type: ignore[operator]
    loss = build_module({**cfg, "loss_weight": 2.0}, MODELS)
    kw = dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss(PRED, TARGET, reduction_override="none"), 2 * ref, **kw)
    torch.testing.assert_close(loss(PRED, TARGET), 2 * ref.mean(), **kw)
    torch.testing.assert_close(loss(PRED, TARGET, reduction_override="sum"), 2 * ref.sum(), **kw)
    weight = torch.tensor([1.0, 0.0, 1.0, 0.5, 0.0, 1.0])[:, None].expand(6, 4)
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(
        loss(PRED, TARGET, weight, avg_factor=3), 2 * (ref * weight).sum() / (3 + eps), **kw
    )
    with pytest.raises(ValueError, match="avg_factor"):
        loss(PRED, TARGET, avg_factor=3, reduction_override="sum")


@pytest.mark.parametrize("loss", [L1Loss(), SmoothL1Loss(), BalancedL1Loss()])
def test_empty_inputs_give_zero_with_gradient(loss: torch.nn.Module) -> None:
    for kwargs in ({}, {"weight": torch.zeros(0, 4)}, {"avg_factor": 1.0}):
        pred = torch.zeros(0, 4, requires_grad=True)
        out = loss(pred, torch.zeros(0, 4), **kwargs)
        assert out.sum().item() == 0.0
        out.sum().backward()
        assert pred.grad is not None


def test_shape_mismatch_and_bad_beta() -> None:
    with pytest.raises(ValueError, match="differ"):
        L1Loss()(PRED, TARGET[:, :2])
    with pytest.raises(ValueError, match="beta"):
        SmoothL1Loss(beta=0.0)(PRED, TARGET)
    with pytest.raises(ValueError, match="reduction"):
        SmoothL1Loss(reduction="avg")


def test_literal_values() -> None:
    pred, target = torch.zeros(1, 2), torch.tensor([[0.5, 2.0]])
    assert SmoothL1Loss(reduction="none")(pred, target).tolist() == [[0.125, 1.5]]
    out = BalancedL1Loss(reduction="none")(pred, target)
    torch.testing.assert_close(out, torch.tensor([[0.4006, 2.5786]]), atol=1e-4, rtol=0)
