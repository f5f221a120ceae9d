"""GaussianFocalLoss: v2's formula, reductions and the shape check."""

from __future__ import annotations

import pytest
import torch

from detforge.models.losses import GaussianFocalLoss, gaussian_focal_loss


def test_positive_and_negative_terms() -> None:
    pred = torch.tensor([0.7, 0.2, 0.2])
    target = torch.tensor([1.0, 0.5, 0.0])
    got = gaussian_focal_loss(pred, target, reduction="none")
    want = torch.tensor(
        [
            -torch.log(torch.tensor(0.7)) * 0.3**2,  # positive: target exactly 1
            -torch.log(torch.tensor(0.8)) * 0.2**2 * 0.5**4,  # near a peak: down-weighted
            -torch.log(torch.tensor(0.8)) * 0.2**2,
        ]
    )
    torch.testing.assert_close(got, want)


def test_module_weight_avg_factor_and_reduction() -> None:
    pred = torch.rand(2, 3, 4, 4) * 0.98 + 0.01
    target = torch.rand(2, 3, 4, 4)
    target[0, 1, 2, 2] = 1
    loss = GaussianFocalLoss(loss_weight=2.0)
    total = gaussian_focal_loss(pred, target, reduction="sum")
    torch.testing.assert_close(loss(pred, target, avg_factor=3.0), 2 * total / 3, rtol=1e-5, atol=0)
    assert float(loss(pred, target, reduction_override="sum")) == pytest.approx(2 * float(total))
    assert float(loss(pred, target, weight=torch.zeros_like(pred))) == 0
    with pytest.raises(ValueError, match="differ in shape"):
        loss(pred, target[:1])
