"""CrossEntropyLoss: MMDetection's literal values, the sigmoid/softmax/mask variants."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from detforge.models.losses import CrossEntropyLoss, cross_entropy
from detforge.registry import MODELS, build_module

PRED = torch.tensor([[100.0, -100.0]])
LABEL = torch.tensor([1])


def _logits(num: int = 6, classes: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(num, classes, generator=torch.Generator().manual_seed(seed))


def test_mmdet_literal_values() -> None:
    weighted = build_module(
        dict(type="CrossEntropyLoss", use_sigmoid=False, class_weight=[0.8, 0.2]), MODELS
    )
    assert torch.allclose(weighted(PRED, LABEL), torch.tensor(40.0))
    plain = build_module(dict(type="CrossEntropyLoss", use_sigmoid=False), MODELS)
    assert torch.allclose(plain(PRED, LABEL), torch.tensor(200.0))


def test_class_weight_divides_by_sample_count() -> None:
    pred, label = _logits(), torch.tensor([0, 1, 2, 0, 1, 2])
    class_weight = [0.5, 1.0, 2.0]
    ours = CrossEntropyLoss(class_weight=class_weight)(pred, label)
    per_sample = F.cross_entropy(pred, label, reduction="none") * torch.tensor(class_weight)[label]
    torch.testing.assert_close(ours, per_sample.mean())
    torch_mean = F.cross_entropy(pred, label, weight=torch.tensor(class_weight))
    assert not torch.allclose(ours, torch_mean)  # torch divides by the weight sum instead


def test_softmax_reductions_weights_and_loss_weight() -> None:
    pred, label = _logits(), torch.tensor([0, 1, 2, 0, 1, 2])
    ref = F.cross_entropy(pred, label, reduction="none")
    loss = CrossEntropyLoss(loss_weight=2.0)
    weight = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    torch.testing.assert_close(loss(pred, label), 2 * ref.mean())
    torch.testing.assert_close(loss(pred, label, reduction_override="sum"), 2 * ref.sum())
    torch.testing.assert_close(loss(pred, label, reduction_override="none"), 2 * ref)
    torch.testing.assert_close(loss(pred, label, weight), 2 * (ref * weight).mean())
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(
        loss(pred, label, weight, avg_factor=4), 2 * (ref * weight).sum() / (4 + eps)
    )
    with pytest.raises(ValueError, match="reduction_override"):
        loss(pred, label, reduction_override="max")


def test_ignore_index() -> None:
    pred, label = _logits(), torch.tensor([0, 1, 255, 0, 255, 2])
    with pytest.warns(UserWarning, match="avg_non_ignore"):
        all_samples = CrossEntropyLoss(ignore_index=255)(pred, label)
    ref = F.cross_entropy(pred, label, ignore_index=255, reduction="sum")
    torch.testing.assert_close(all_samples, ref / 6)
    non_ignored = CrossEntropyLoss(ignore_index=255, avg_non_ignore=True)(pred, label)
    torch.testing.assert_close(non_ignored, ref / 4)
    override = CrossEntropyLoss(avg_non_ignore=True)(pred, label, ignore_index=255)
    torch.testing.assert_close(override, ref / 4)


def test_sigmoid_expands_labels_with_background() -> None:
    pred = _logits(4, 3)
    label = torch.tensor([0, 2, 3, 1])  # 3 == num_classes: background, all-zero target row
    target = torch.zeros(4, 3)
    target[0, 0] = target[1, 2] = target[3, 1] = 1
    ref = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
    loss = CrossEntropyLoss(use_sigmoid=True)
    torch.testing.assert_close(loss(pred, label), ref.mean())
    weight = torch.tensor([1.0, 0.0, 2.0, 1.0])
    torch.testing.assert_close(loss(pred, label, weight), (ref * weight[:, None]).mean())
    # same-shape targets are used as they are
    torch.testing.assert_close(loss(pred, target), ref.mean())


def test_sigmoid_rpn_style_single_class() -> None:
    pred = torch.tensor([[2.0], [-1.0], [0.5]])
    label = torch.tensor([0, 1, 0])  # 0 = object, 1 = background (num_classes)
    ref = F.binary_cross_entropy_with_logits(pred[:, 0], torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(CrossEntropyLoss(use_sigmoid=True)(pred, label), ref)


def test_sigmoid_class_weight_is_pos_weight_and_ignore() -> None:
    pred, label = _logits(4, 2), torch.tensor([0, 1, -1, 1])
    loss = CrossEntropyLoss(
        use_sigmoid=True, class_weight=[2.0, 1.0], ignore_index=-1, avg_non_ignore=True
    )
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    ref = F.binary_cross_entropy_with_logits(
        pred, target, pos_weight=torch.tensor([2.0, 1.0]), reduction="none"
    )
    valid = torch.tensor([1.0, 1.0, 0.0, 1.0])[:, None]
    torch.testing.assert_close(loss(pred, label), (ref * valid).sum() / 6)


def test_mask_variant() -> None:
    gen = torch.Generator().manual_seed(1)
    mask_pred = torch.randn(3, 4, 5, 5, generator=gen)
    targets = (torch.rand(3, 5, 5, generator=gen) > 0.5).float()
    labels = torch.tensor([2, 0, 3])
    loss = build_module(dict(type="CrossEntropyLoss", use_mask=True, loss_weight=1.0), MODELS)
    out = loss(mask_pred, targets, labels)
    ref = F.binary_cross_entropy_with_logits(mask_pred[torch.arange(3), labels], targets)
    assert out.shape == (1,)
    torch.testing.assert_close(out[0], ref)
    with pytest.raises(ValueError, match="reduction"):
        loss(mask_pred, targets, labels, reduction_override="sum")


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="use_sigmoid and use_mask"):
        CrossEntropyLoss(use_sigmoid=True, use_mask=True)
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropyLoss(reduction="avg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CrossEntropyLoss(ignore_index=255, avg_non_ignore=True)


def test_empty_input_gives_zero_with_gradient() -> None:
    for loss in (CrossEntropyLoss(), CrossEntropyLoss(use_sigmoid=True)):
        pred = torch.zeros(0, 3, requires_grad=True)
        out = loss(pred, torch.zeros(0, dtype=torch.long))
        assert out.item() == 0.0
        out.backward()
        assert pred.grad is not None
    out = cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), avg_factor=1.0)
    assert out.item() == 0.0
