"""IoU-family losses on literal boxes against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.losses import (
    BoundedIoULoss,
    CIoULoss,
    DIoULoss,
    GIoULoss,
    IoULoss,
    iou_loss,
)
from detforge.registry import MODELS, build_module

BOX = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
TALL = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # IoU with BOX: 100 / 200
FAR = torch.tensor([[20.0, 0.0, 30.0, 10.0]])  # disjoint; enclosing box 30 x 10


def test_iou_loss_modes() -> None:
    assert IoULoss(mode="linear")(BOX, TALL).item() == pytest.approx(0.5)
    assert IoULoss(mode="square")(BOX, TALL).item() == pytest.approx(0.75)
    assert IoULoss()(BOX, TALL).item() == pytest.approx(math.log(2))
    # disjoint boxes: IoU clamped to eps
    assert IoULoss(eps=1e-6)(BOX, FAR).item() == pytest.approx(-math.log(1e-6), rel=1e-5)
    with pytest.warns(DeprecationWarning):
        assert IoULoss(linear=True).mode == "linear"
    with pytest.raises(ValueError, match="mode"):
        IoULoss(mode="cube")


def test_giou_diou_ciou_literal() -> None:
    # GIoU = IoU - (enclose - union) / enclose = 0 - (300 - 200) / 300
    assert GIoULoss()(BOX, FAR).item() == pytest.approx(1 + 1 / 3, rel=1e-5)
    assert GIoULoss()(BOX, TALL).item() == pytest.approx(0.5 + 0.0, rel=1e-5)
    # DIoU: centre distance 20² over diagonal 30² + 10²
    assert DIoULoss()(BOX, FAR).item() == pytest.approx(1 + 400 / 1000, rel=1e-5)
    assert CIoULoss()(BOX, FAR).item() == pytest.approx(1.4, rel=1e-5)  # same aspect ratio


def test_ciou_aspect_term() -> None:
    pred, target = BOX, torch.tensor([[0.0, 0.0, 10.0, 12.0]])
    iou = 100 / 120
    rho2 = 1.0  # centres (5, 5) and (5, 6)
    c2 = 10**2 + 12**2
    v = 4 / math.pi**2 * (math.atan(10 / 12) - math.atan(10 / 10)) ** 2
    alpha = v / (1 - iou + v)  # IoU > 0.5
    expected = 1 - (iou - (rho2 / c2 + alpha * v))
    assert CIoULoss()(pred, target).item() == pytest.approx(expected, rel=1e-5)
    expected_diou = 1 - (iou - rho2 / c2)
    assert DIoULoss()(pred, target).item() == pytest.approx(expected_diou, rel=1e-5)


def test_bounded_iou_loss() -> None:
    out = BoundedIoULoss(reduction="none")(BOX, torch.tensor([[5.0, 0.0, 15.0, 10.0]]))
    # dx = 5 with target width 10: 1 - max((10 - 10) / (20 + eps), 0) = 1 >= beta -> 1 - 0.1
    torch.testing.assert_close(out[0, 0], torch.tensor(0.9))
    assert out[0, 1:].max() < 1e-6


@pytest.mark.parametrize("name", ["IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "BoundedIoULoss"])
def test_reductions_weights_and_loss_weight(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(5, 2, generator=gen) * 10
    pred = torch.cat([xy, xy + 5 + torch.rand(5, 2, generator=gen) * 5], 1)
    target = pred + torch.randn(5, 4, generator=gen)
    loss = build_module(dict(type=name, loss_weight=2.0), MODELS)
    none = loss(pred, target, reduction_override="none")
    assert none.shape == ((5, 4) if name == "BoundedIoULoss" else (5,))
    torch.testing.assert_close(loss(pred, target), none.mean())
    torch.testing.assert_close(loss(pred, target, reduction_override="sum"), none.sum())
    weight = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.0])
    w = weight if none.ndim == 1 else weight[:, None]
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(loss(pred, target, w, avg_factor=2), (none * w).sum() / (2 + eps))
    if name != "BoundedIoULoss":  # a per-coordinate weight is averaged to one per box
        torch.testing.assert_close(loss(pred, target, w[:, None].expand(5, 4)), (none * w).mean())


@pytest.mark.parametrize("loss", [IoULoss(), GIoULoss(), DIoULoss(), CIoULoss(), BoundedIoULoss()])
def test_zero_weight_and_empty_inputs(loss: torch.nn.Module) -> None:
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0]], requires_grad=True)
    out = loss(pred, TALL, torch.zeros(1))
    assert out.item() == 0.0
    out.backward()
    assert pred.grad is not None
    empty = torch.zeros(0, 4, requires_grad=True)
    out = loss(empty, torch.zeros(0, 4))
    assert out.item() == 0.0
    out.backward()
    assert empty.grad is not None


def test_functional_form() -> None:
    out = iou_loss(BOX, TALL, mode="linear", reduction="none")
    torch.testing.assert_close(out, torch.tensor([0.5]))
