"""Golden parity with MMDetection: the PAA and TOOD fixtures (../shared/fixtures).

Neck features, detections row by row with and without rescale (``dets_v2``: PAA's own
post-processing and TOOD's have no ``min_bbox_size`` step, so they equal ``dets``), losses (per
level for TOOD, and TOOD's task-aligned epoch in ``losses_variants``) and every gradient norm; the
full-size standard configs give MMDetection's state_dict layout key for key.

PAA's training assignment fits Gaussian mixtures with scikit-learn (the fixture used 1.9.1);
its loss test skips where scikit-learn is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from tests.models.golden import FIXTURES
from tests.models.golden import fixture_metas as _metas
from tests.models.golden import load_fixture as _load

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAMILIES = ["paa", "tood"]
LOSS_NAMES = {"paa": {"loss_cls", "loss_bbox", "loss_iou"}, "tood": {"loss_cls", "loss_bbox"}}


def _train_losses(family: str, model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    if family == "paa":
        pytest.importorskip("sklearn", reason="PAA's assignment needs scikit-learn")
    losses: dict[str, Any] = model.forward_train(
        inputs["img"],
        _metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    return losses


@pytest.mark.parametrize("family", FAMILIES)
def test_neck_features(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == len(expected["neck"]) == 5
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(family: str, rescale: bool, one_thread: Any) -> None:
    """The head's ``(det_bboxes, det_labels)`` in MMDetection's order (PAA's score voting
    groups them by class), row by row."""
    model, inputs, expected = _load(family)
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        results = model.bbox_head.simple_test(feats, _metas(inputs), rescale=rescale)
    assert len(results) == len(expected[key]) == 2
    for (dets, labels), want in zip(results, expected[key], strict=True):
        assert dets.shape == (len(want["bboxes"]), 5)
        torch.testing.assert_close(labels, want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_simple_test_gives_v2_per_class_arrays(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    with torch.no_grad():
        results = model.simple_test(inputs["img"], _metas(inputs), rescale=True)
    for per_class, want in zip(results, expected["dets_rescaled_v2"], strict=True):
        counts = np.bincount(want["labels"].numpy(), minlength=80)
        assert [len(arr) for arr in per_class] == counts.tolist()
        scores = np.sort(np.concatenate([arr[:, 4] for arr in per_class]))[::-1]
        np.testing.assert_allclose(scores, np.sort(want["scores"].numpy())[::-1], atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_losses_and_gradients(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.train()
    losses = _train_losses(family, model, inputs)
    assert set(losses) == LOSS_NAMES[family]
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for name, values in expected.get("losses_per_level", {}).items():
        got = [float(v.detach()) for v in losses[name]]
        assert got == pytest.approx(values, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-4, abs=1e-8), name
    with_grad = {n for n, p in params.items() if p.grad is not None}
    assert with_grad == set(expected["grads_all"])


def test_tood_task_aligned_epoch_losses(one_thread: Any) -> None:
    """From ``initial_epoch`` (4) on, TOOD assigns by the task-alignment metric and trains the
    scores with the quality focal loss: MMDetection's losses of the same batch at epoch 4."""
    model, inputs, expected = _load("tood")
    model.train()
    model.set_epoch(4)
    with torch.no_grad():
        losses = _train_losses("tood", model, inputs)
    _, log_vars = parse_losses(losses)
    want = expected["losses_variants"]["epoch=4"]
    assert want["loss"] != pytest.approx(expected["losses"]["loss"], rel=1e-2)
    for name, value in want.items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ("paa/paa_r50_fpn_1x_coco.py", "paa_r50.json"),
        ("tood/tood_r50_fpn_1x_coco.py", "tood_r50.json"),
    ],
)
def test_full_size_layout(config: str, layout: str) -> None:
    """Key for key and shape for shape."""
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
