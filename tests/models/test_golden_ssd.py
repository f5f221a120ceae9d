"""Golden parity with MMDetection: the SSDLite fixture (../shared/fixtures/mmdet/ssd).

The tiny SSDLite (MobileNetV2 ×0.25, depthwise SSDNeck and SSDHead) is built from the fixture's
``model.py``, loads ``weights.pth`` strictly and must reproduce the neck maps, the detections
row by row (with and without rescale), the per-image hard-negative-mined losses and every
gradient norm. The full-size SSDLite and SSD300 configs give MMDetection's state_dict layout.

Gradient norms: the BN biases of MobileNetV2's linear (activation-free) convs feed another BN,
so their exact gradient is 0 and the float32 values (1e-9 to 8e-8 in both implementations) are
rounding noise; norms are compared with ``rel=1e-4`` plus an absolute ``1e-6`` of the largest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from tests.models.golden import FIXTURES, fixture_metas, load_fixture

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_neck_features(one_thread: Any) -> None:
    model, inputs, expected = load_fixture("ssd")
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert [f.shape[-1] for f in feats] == [20, 10, 5, 3, 2, 1]
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(rescale: bool, one_thread: Any) -> None:
    """Softmax scores (background last), per-level top 1000, NMS 0.45, 200 per image."""
    model, inputs, expected = load_fixture("ssd")
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        results = model.bbox_head.simple_test(feats, fixture_metas(inputs), rescale=rescale)
    assert len(results) == len(expected[key]) == 2
    for (dets, labels), want in zip(results, expected[key], strict=True):
        assert dets.shape == (len(want["bboxes"]), 5) == (200, 5)
        torch.testing.assert_close(labels, want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=1e-6)


def test_losses_per_image_and_gradients(one_thread: Any) -> None:
    model, inputs, expected = load_fixture("ssd")
    model.train()
    losses = model.forward_train(
        inputs["img"],
        fixture_metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    assert set(losses) == {"loss_cls", "loss_bbox"}
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for name, values in expected["losses_per_level"].items():  # one value per image
        got = [float(v.detach()) for v in losses[name]]
        assert got == pytest.approx(values, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    noise = 1e-6 * max(expected["grads_all"].values())
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-4, abs=noise), name
    with_grad = {n for n, p in params.items() if p.grad is not None}
    assert with_grad == set(expected["grads_all"])


@pytest.mark.parametrize(
    ("config", "layout"),
    [("ssd/ssdlite_mobilenetv2_scratch_600e_coco.py", "ssdlite_mobilenetv2.json")],
)
def test_full_size_layout(config: str, layout: str) -> None:
    path = FIXTURES / "layouts" / layout
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    expected = json.loads(path.read_text())
    model = build_detector(load_config(CONFIGS / config, environ={}).cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"]


def test_ssd300_layout_and_anchors() -> None:
    """SSD300 (VGG-16): v2's 4/6/6/6/4/4 anchors per cell, 8732 in all, and 3x3 final convs
    (MMDetection 3.3.0's ssd300_coco.py builds 34,305,206 parameters in 71 state_dict entries,
    keys and shapes equal to ours)."""
    model = build_detector(load_config(CONFIGS / "ssd/ssd300_coco.py", environ={}).cfg.model)
    head = model.bbox_head
    assert head.prior_generator.num_base_priors == [4, 6, 6, 6, 4, 4]
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert sum(len(a) for a in head.prior_generator.grid_priors(sizes)) == 8732
    assert [tuple(m[-1].weight.shape) for m in head.cls_convs] == [
        (324, 512, 3, 3),
        (486, 1024, 3, 3),
        (486, 512, 3, 3),
        (486, 256, 3, 3),
        (324, 256, 3, 3),
        (324, 256, 3, 3),
    ]
    assert sum(p.numel() for p in model.parameters()) == 34_305_206
    assert len(model.state_dict()) == 71
