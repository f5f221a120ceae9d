"""GHM-C and GHM-R: bin weights, the moving-average buffer and v2's state_dict entries (the
numbers inside RetinaNet are in tests/models/test_golden_zoo2_small.py)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.losses import GHMC, GHMR


def test_ghmc_weights_each_bin_inversely_to_its_count() -> None:
    # logits 0 -> p = 0.5, g = 0.5 for every element: one bin, weight tot / n / 1 = 1
    loss = GHMC(bins=10)
    pred = torch.zeros(3, 2)
    value = loss(pred, torch.tensor([0, 1, 2]), torch.ones(3))
    assert value.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), rel=1e-6)
    # two easy negatives (g ~ 0) and one hard positive (g ~ 1): bins of 2 and 1 elements, so
    # the lone hard element weighs twice as much as each easy one: (2 * 1.5/2 * e + 1.5 * h) / 3
    pred = torch.tensor([[-10.0], [-10.0], [-10.0]])
    value = loss(pred, torch.tensor([[0.0], [0.0], [1.0]]), torch.ones(3, 1))
    easy, hard = torch.nn.functional.softplus(torch.tensor([-10.0, 10.0])).tolist()
    assert value.item() == pytest.approx((2 * 0.75 * easy + 1.5 * hard) / 3, rel=1e-5)


def test_ignored_elements_do_not_count() -> None:
    loss = GHMC(bins=10)
    pred = torch.tensor([[0.3], [-2.0]])
    both = loss(pred, torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [1.0]]))
    first = loss(pred, torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [0.0]]))
    alone = loss(pred[:1], torch.tensor([[1.0]]), torch.tensor([[1.0]]))
    assert first.item() == pytest.approx(alone.item()) and both.item() != pytest.approx(
        first.item()
    )


def test_momentum_keeps_a_moving_count_in_a_v2_buffer() -> None:
    loss = GHMC(bins=4, momentum=0.75)
    assert set(loss.state_dict()) == {"edges", "acc_sum"}
    loss(torch.zeros(4, 1), torch.ones(4, 1), torch.ones(4, 1))  # g = 0.5: bin 2
    assert loss.acc_sum.tolist() == [0.0, 0.0, 1.0, 0.0]  # 0.75 * 0 + 0.25 * 4
    assert set(GHMC(bins=4).state_dict()) == {"edges"}
    assert GHMR(bins=4, momentum=0.7).state_dict()["edges"].tolist() == [
        0.0,
        0.25,
        0.5,
        0.75,
        1000.0,
    ]


def test_ghmr_is_the_authentic_smooth_l1_normalised_by_the_weights() -> None:
    loss = GHMR(mu=0.02, bins=10)
    pred = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    # one element with error 1 (g ~ 1, bin 9), three with error 0 (g = 0, bin 0): tot = 4,
    # weights 4 / 1 / 2 and 4 / 3 / 2; only the first has a loss: sqrt(1 + mu^2) - mu
    value = loss(pred, target, torch.ones(1, 4))
    assert value.item() == pytest.approx(2.0 * ((1 + 0.02**2) ** 0.5 - 0.02) / 4, rel=1e-6)


def test_ghmc_has_only_the_sigmoid_form() -> None:
    with pytest.raises(NotImplementedError, match="use_sigmoid=True"):
        GHMC(use_sigmoid=False)
