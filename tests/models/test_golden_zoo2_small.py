"""Small goldens of Model zoo II families from MMDetection 3.3 (tests/data/goldens/<family>,
made by tools/goldens/zoo2_dense.py; README.md there): tiny random-weight models on the two
images of the shared PAA fixture's ``inputs.pt``.

Detections with and without rescale row by row against ``dets_v2`` (v2's dense heads keep
zero-size boxes), the losses (and per level) and every gradient norm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from tests.models.golden import FIXTURES
from tests.models.golden import fixture_metas as _metas

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"
FAMILIES = ["autoassign", "ddod", "foveabox", "free_anchor", "fsaf", "ghm"]


def _load(family: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    inputs_path = FIXTURES / "paa" / "inputs.pt"
    if not inputs_path.is_file():
        pytest.skip(f"{inputs_path} not found")
    root = GOLDENS / family
    model = build_detector(Config.fromfile(root / "model.py").model)
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    inputs = torch.load(inputs_path, weights_only=False)
    expected = torch.load(root / "expected.pt", weights_only=True)
    return model, inputs, expected


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(family: str, rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        results = model.bbox_head.simple_test(feats, _metas(inputs), rescale=rescale)
    assert len(results) == len(expected[key]) == 2
    assert sum(len(want["bboxes"]) for want in expected[key]) > 0
    for (dets, labels), want in zip(results, expected[key], strict=True):
        assert dets.shape == (len(want["bboxes"]), 5)
        torch.testing.assert_close(labels, want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=1e-5)


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
    assert set(losses) == set(expected["losses"]) - {"loss"}
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for name, values in expected["losses_per_level"].items():
        got = [float(v.detach()) for v in losses[name]]
        assert got == pytest.approx(values, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-3, abs=1e-7), name
    assert {n for n, p in params.items() if p.grad is not None} == set(expected["grads_all"])
