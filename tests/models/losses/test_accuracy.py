"""accuracy / Accuracy: MMDetection's cases."""

from __future__ import annotations

import pytest
import torch

from detforge.models.losses import Accuracy, accuracy

PRED = torch.tensor(
    [
        [0.2, 0.3, 0.6, 0.5],
        [0.1, 0.1, 0.2, 0.6],
        [0.9, 0.0, 0.0, 0.1],
        [0.4, 0.7, 0.1, 0.1],
        [0.0, 0.0, 0.99, 0.0],
    ]
)
TRUE = torch.tensor([2, 3, 0, 1, 2])


def test_mmdet_cases() -> None:
    assert Accuracy(topk=1)(torch.empty(0, 4), torch.empty(0)).item() == 0
    assert Accuracy(topk=1)(PRED, TRUE).item() == 100
    assert Accuracy(topk=1, thresh=0.8)(PRED, TRUE).item() == 40
    assert Accuracy(topk=2)(PRED, torch.tensor([3, 2, 0, 0, 2])).item() == 100
    both = Accuracy(topk=(1, 2))(PRED, TRUE)
    assert isinstance(both, list) and [a.item() for a in both] == [100, 100]


def test_partial_accuracy_and_shape() -> None:
    out = accuracy(PRED, torch.tensor([2, 2, 0, 0, 2]))
    assert isinstance(out, torch.Tensor) and out.shape == (1,)
    assert out.item() == pytest.approx(60.0)
    top2 = accuracy(PRED, torch.tensor([3, 2, 3, 0, 2]), topk=(1, 2))
    assert [round(a.item(), 4) for a in top2] == [20.0, 100.0]


def test_errors() -> None:
    with pytest.raises(ValueError, match="maxk"):
        Accuracy(topk=5)(PRED, TRUE)
    with pytest.raises(TypeError, match="topk"):
        accuracy(PRED, TRUE, topk="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected"):
        accuracy(PRED, torch.tensor([2, 3, 0, 1, 2, 0]))
    with pytest.raises(ValueError, match="expected"):
        accuracy(PRED[:, :, None], TRUE)
