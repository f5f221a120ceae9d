"""Golden parity with MMDetection: the FCOS and ATSS fixtures (../shared/fixtures).

For each fixture: build the model from its ``model.py`` with detforge, load ``weights.pth``
strictly, feed ``inputs.pt``, and compare neck features, detections (with and without rescale,
against the v2 variants ``dets_v2``/``dets_rescaled_v2``), losses (per level for ATSS) and every
gradient norm with ``expected.pt``. The full-size configs must give MMDetection's state_dict
layout key for key.

FCOS boxes get a size-aware tolerance on top of ``atol=1e-4``: its side distances are
``exp(conv)``, so the float32 rounding of the regression tower is multiplied by the distance.
Re-running the head in float64 shows that MMDetection's own float32 boxes are up to 2e-4 px from
the exact values, as are ours (distances up to ~190 px, i.e. ~1e-6 of the box size).
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
FAMILIES = ["fcos", "atss"]
BOX_SIZE_TOL = {"fcos": 2e-6, "atss": 0.0}


def _assert_boxes_close(got: torch.Tensor, want: torch.Tensor, size_tol: float) -> None:
    """``|got - want| <= 1e-4 + size_tol * max(w, h)`` of the expected box, coordinate-wise."""
    size = (want[:, 2:] - want[:, :2]).max(dim=1, keepdim=True).values
    excess = (got - want).abs() - (1e-4 + size_tol * size)
    worst = int(excess.max(dim=1).values.argmax())
    assert float(excess.max()) <= 0, f"row {worst}: {got[worst].tolist()} vs {want[worst].tolist()}"


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
    """The head's ``(det_bboxes, det_labels)`` in MMDetection's order, row by row."""
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
        _assert_boxes_close(dets[:, :4], want["bboxes"], BOX_SIZE_TOL[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_simple_test_gives_v2_per_class_arrays(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    with torch.no_grad():
        results = model.simple_test(inputs["img"], _metas(inputs), rescale=True)
    for per_class, want in zip(results, expected["dets_rescaled_v2"], strict=True):
        assert len(per_class) == 80
        counts = np.bincount(want["labels"].numpy(), minlength=80)
        assert [len(arr) for arr in per_class] == counts.tolist()
        scores = np.sort(np.concatenate([arr[:, 4] for arr in per_class]))[::-1]
        np.testing.assert_allclose(scores, want["scores"].numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_losses_and_gradients(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.train()
    losses = model.forward_train(
        inputs["img"],
        _metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_centerness"}
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for name, values in expected.get("losses_per_level", {}).items():
        got = [float(v.detach()) for v in losses[name]]
        assert got == pytest.approx(values, rel=1e-5, abs=1e-6), name
    if family == "atss":
        assert "losses_per_level" in expected
    loss.backward()
    params = dict(model.named_parameters())
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-4, abs=1e-8), name
    with_grad = {n for n, p in params.items() if p.grad is not None}
    assert with_grad == set(expected["grads_all"])


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ("fcos/fcos_r50_caffe_fpn_gn-head_1x_coco.py", "fcos_r50.json"),
        ("atss/atss_r50_fpn_1x_coco.py", "atss_r50.json"),
    ],
)
def test_full_size_layout(config: str, layout: str) -> None:
    """Key for key and shape for shape; the caffe FCOS backbone's BN is frozen."""
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
