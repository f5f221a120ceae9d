"""Seesaw loss: literal numbers, the class counts it accumulates, and two goldens from
MMDetection 3.3 (tests/data/goldens/seesaw_loss: Mask R-CNN with a NormedLinear classifier
and NormedConv2d mask logits; seesaw_cascade: the three stages of Cascade R-CNN)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.layers import NormedConv2d, NormedLinear
from detforge.models.losses import SeesawLoss, seesaw_ce_loss
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    load_golden,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"


def test_mitigation_and_compensation_by_hand() -> None:
    """Label 0 of 3 classes; class 1 seen half as often (mitigated by 0.5 ** p), class 2
    scoring above the label (compensated by (s_2 / s_0) ** q)."""
    logits = torch.tensor([[0.5, 0.1, 1.2]])
    counts = torch.tensor([4.0, 2.0, 8.0])
    p, q = 0.8, 2.0
    s = F.softmax(logits, dim=1)[0]
    shifted = logits.clone()
    shifted[0, 1] += math.log(0.5**p)
    shifted[0, 2] += math.log(float(s[2] / s[0]) ** q)
    want = F.cross_entropy(shifted, torch.tensor([0]))
    got = seesaw_ce_loss(logits, torch.tensor([0]), None, counts, 3, p, q, eps=1e-2)
    torch.testing.assert_close(got, want)
    # both factors off: plain cross-entropy
    plain = seesaw_ce_loss(logits, torch.tensor([0]), None, counts, 3, 0.0, 0.0, eps=1e-2)
    torch.testing.assert_close(plain, F.cross_entropy(logits, torch.tensor([0])))


def test_loss_counts_samples_and_activation_sums_to_one() -> None:
    loss = SeesawLoss(num_classes=3)
    labels = torch.tensor([0, 0, 2, 3, 3, 3])
    out = loss(torch.randn(6, 5), labels)
    assert set(out) == {"loss_cls_objectness", "loss_cls_classes"}
    assert loss.cum_samples.tolist() == [2.0, 0.0, 1.0, 3.0]
    scores = loss.get_activation(torch.randn(4, 5))
    torch.testing.assert_close(scores.sum(1), torch.ones(4))
    acc = loss.get_accuracy(
        torch.tensor([[9.0, 0, 0, 5, 0], [0, 0, 0, 0, 5]]), torch.tensor([0, 3])
    )
    assert float(acc["acc_objectness"]) == 100 and float(acc["acc_classes"]) == 100
    no_pos = loss(torch.randn(2, 5, requires_grad=True), torch.tensor([3, 3]))
    assert isinstance(no_pos, dict) and float(no_pos["loss_cls_classes"]) == 0
    with pytest.raises(ValueError, match="columns"):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="use_sigmoid"):
        SeesawLoss(use_sigmoid=True)


def test_normed_predictors_are_cosine_layers() -> None:
    torch.manual_seed(0)
    linear = NormedLinear(6, 3, tempearture=20, bias=False)
    x = torch.randn(4, 6)
    want = 20 * F.normalize(x, dim=1) @ F.normalize(linear.weight, dim=1).t()
    torch.testing.assert_close(linear(x), want, atol=1e-4, rtol=1e-4)
    conv = NormedConv2d(6, 3, 1, tempearture=20, bias=False)
    y = torch.randn(2, 6, 4, 4)
    flat = y.permute(0, 2, 3, 1).reshape(-1, 6)
    want_c = 20 * F.normalize(flat, dim=1) @ F.normalize(conv.weight.flatten(1), dim=1).t()
    got_c = conv(y).permute(0, 2, 3, 1).reshape(-1, 3)
    torch.testing.assert_close(got_c, want_c, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "fixture"), [("seesaw_loss", "mask_rcnn"), ("seesaw_cascade", "cascade_rcnn")]
)
def test_golden(name: str, fixture: str, one_thread: Any) -> None:
    model, inputs, expected = load_golden(name, fixture)
    check_detections(model, inputs, expected)
    check_losses_and_grads(model, inputs, expected)


def test_full_size_layout() -> None:
    config = (
        V2_CONFIGS
        / "seesaw_loss"
        / "mask_rcnn_r50_fpn_random_seesaw_loss_normed_mask_mstrain_2x_lvis_v1.py"
    )
    if not config.is_file():
        pytest.skip(f"{config} not found")
    path = GOLDENS / "seesaw_loss" / "layout_mask_rcnn_r50_seesaw_normed_mask.json"
    expected = json.loads(path.read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
    assert model.roi_head.bbox_head.fc_cls.out_features == 1203 + 2
