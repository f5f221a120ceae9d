"""Shared helpers of the golden-fixture tests (../shared/fixtures/mmdet, see its README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config, load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from detforge.structures.bbox import bbox_overlaps
from detforge.structures.det_result import DetResult
from tests.conftest import shared_data_dir

FIXTURES = shared_data_dir().parent / "fixtures" / "mmdet"
# MMDetection 3.3 renamed some v2 arguments; the fixtures' model.py files are 3.3's
V3_TO_V2_KEYS = {
    "CTResNetNeck": {"in_channels": "in_channel"},
    "CenterNetHead": {"in_channels": "in_channel", "feat_channels": "feat_channel"},
}


def v2_model_cfg(cfg: Any) -> Any:
    """A copy of a fixture's config dict with the 3.3 argument names of ``V3_TO_V2_KEYS``
    turned back into v2's, at any depth."""
    if isinstance(cfg, dict):
        renames = V3_TO_V2_KEYS.get(str(cfg.get("type")), {})
        return {renames.get(k, k): v2_model_cfg(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return type(cfg)(v2_model_cfg(v) for v in cfg)
    return cfg


def load_fixture(family: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    root = FIXTURES / family
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    cfg = Config.fromfile(root / "model.py")
    model = build_detector(v2_model_cfg(cfg.model.to_dict()))
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    inputs = torch.load(root / "inputs.pt", weights_only=False)
    expected = torch.load(root / "expected.pt", weights_only=True)
    return model, inputs, expected


def fixture_metas(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(meta) for meta in inputs["img_metas"]]


def dets_from_v2(result: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """v2 per-class arrays → boxes, scores, labels sorted by score (descending, stable)."""
    dets = DetResult.from_v2(result).sorted()
    return dets.boxes, dets.scores, dets.labels


def match_dets(result: list[np.ndarray], expected: dict[str, torch.Tensor]) -> None:
    """Same count; every expected detection has a same-label partner (IoU > 0.99, score 1e-4)."""
    boxes, scores, labels = dets_from_v2(result)
    exp_boxes = expected["bboxes"].numpy()
    exp_scores = expected["scores"].numpy()
    exp_labels = expected["labels"].numpy()
    assert len(boxes) == len(exp_boxes)
    if len(boxes) == 0:
        return
    ious = bbox_overlaps(torch.from_numpy(exp_boxes).float(), torch.from_numpy(boxes).float())
    for i in range(len(exp_boxes)):
        candidates = np.where((labels == exp_labels[i]) & (ious[i].numpy() > 0.99))[0]
        assert len(candidates), f"expected detection {i} ({exp_labels[i]}) has no partner"
        j = candidates[np.argmin(np.abs(scores[candidates] - exp_scores[i]))]
        # float32 coordinates near 640 px have a 6e-5 ulp: allow a few ulps on large values
        np.testing.assert_allclose(boxes[j], exp_boxes[i], atol=1e-4, rtol=1e-6)
        np.testing.assert_allclose(scores[j], exp_scores[i], atol=1e-4, rtol=0)


def assert_losses_and_grads(
    model: torch.nn.Module,
    losses: dict[str, Any],
    expected: dict[str, Any],
    grad_abs: float = 1e-8,
) -> None:
    """``losses`` (and per level) equal ``expected`` (rel 1e-5); after ``backward`` of their
    sum, every gradient norm is within rel 1e-3 and exactly the expected parameters have one."""
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for name, values in expected.get("losses_per_level", {}).items():
        got = [float(v.detach()) for v in losses[name]]
        assert got == pytest.approx(values, rel=1e-5, abs=1e-6), name
    loss.backward()
    check_grad_norms(model, expected, grad_abs=grad_abs)


def check_grad_norms(
    model: Any, expected: dict[str, Any], rel: float = 1e-3, grad_abs: float = 1e-8
) -> None:
    """Every parameter of ``expected['grads_all']`` has that gradient L2 norm (``rel``, plus
    ``grad_abs`` for norms that are float32 noise around 0), and no other parameter has one."""
    params = dict(model.named_parameters())
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(norm, rel=rel, abs=grad_abs), name
    assert {n for n, p in params.items() if p.grad is not None} == set(expected["grads_all"])


def assert_full_layout(
    config: Path, layout: dict[str, Any], options: dict[str, Any] | None = None
) -> None:
    """The v2 config's detector (with ``options`` merged in, as ``--cfg-options``) has the
    layout's state_dict keys and shapes, in order, and its parameter counts."""
    cfg = load_config(config, environ={}).cfg
    cfg.merge_from_dict(options or {})
    model = build_detector(cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == layout["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == layout["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == layout["num_trainable_params"]


def check_dets_rows(
    results: list[Any], expected: list[dict[str, torch.Tensor]], count: int
) -> None:
    """Per image ``count`` detections ``(dets [n, 5], labels [n])`` equal to the expected ones
    row by row: same labels, scores within 1e-4, boxes within 1e-4 (+1e-6 relative)."""
    assert len(results) == len(expected)
    for (dets, labels), want in zip(results, expected, strict=True):
        assert dets.shape == (len(want["bboxes"]), 5) == (count, 5)
        torch.testing.assert_close(labels, want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=1e-6)
