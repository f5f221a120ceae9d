"""DiceLoss against numbers worked out by hand (V-Net and naive denominators, activation)."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import ConfigValueError
from detforge.models.losses import DiceLoss, dice_loss

PRED = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
TARGET = torch.tensor([[1.0, 0.0], [1.0, 0.0]])


def test_vnet_denominator() -> None:
    # sample 0: 1 - 2 / (1.001 + 1.001); sample 1: 1 - 1 / (0.501 + 1.001)
    out = dice_loss(PRED, TARGET, reduction="none")
    torch.testing.assert_close(out, torch.tensor([1 - 2 / 2.002, 1 - 1 / 1.502]))


def test_naive_denominator() -> None:
    # sample 0: 1 - 2.001 / 2.001; sample 1: 1 - 1.001 / 2.001
    out = dice_loss(PRED, TARGET, reduction="none", naive_dice=True)
    torch.testing.assert_close(out, torch.tensor([0.0, 1 - 1.001 / 2.001]))


def test_module_weight_avg_factor_and_activation() -> None:
    loss = DiceLoss(activate=False, loss_weight=8.0)
    expected = 8 * ((1 - 2 / 2.002) + (1 - 1 / 1.502)) / 2
    assert float(loss(PRED, TARGET, avg_factor=2)) == pytest.approx(expected, rel=1e-6)
    logits = torch.tensor([[20.0, -20.0], [0.0, 0.0]])  # sigmoid: ~[1, 0] and [0.5, 0.5]
    activated = DiceLoss(loss_weight=8.0)(logits, TARGET, avg_factor=2)
    assert float(activated) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigValueError, match="use_sigmoid"):
        DiceLoss(use_sigmoid=False)
