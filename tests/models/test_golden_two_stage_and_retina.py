"""Golden parity with MMDetection: Faster R-CNN and RetinaNet fixtures (../shared/fixtures).

For each fixture: build the model from its ``model.py`` with detforge, load ``weights.pth``
strictly, feed ``inputs.pt``, and compare neck features, proposals, detections (with and without
rescale), losses and gradient norms with ``expected.pt`` at the tolerances of the fixtures'
README.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from detforge.structures.bbox import bbox_overlaps
from tests.conftest import shared_data_dir

FIXTURES = shared_data_dir().parent / "fixtures" / "mmdet"


def _load(family: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    root = FIXTURES / family
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    cfg = Config.fromfile(root / "model.py")
    model = build_detector(cfg.model)
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    inputs = torch.load(root / "inputs.pt", weights_only=False)
    expected = torch.load(root / "expected.pt", weights_only=True)
    return model, inputs, expected


def _metas(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(meta) for meta in inputs["img_metas"]]


def _dets_from_v2(result: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """v2 per-class arrays → boxes, scores, labels sorted by score (descending, stable)."""
    rows = [(box[:4], box[4], label) for label, arr in enumerate(result) for box in arr]
    if not rows:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    boxes = np.stack([r[0] for r in rows])
    scores = np.array([r[1] for r in rows])
    labels = np.array([r[2] for r in rows])
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order], labels[order]


def _match_dets(result: list[np.ndarray], expected: dict[str, torch.Tensor]) -> None:
    """Same count; every expected detection has a same-label partner (IoU > 0.99, score 1e-4)."""
    boxes, scores, labels = _dets_from_v2(result)
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
        np.testing.assert_allclose(boxes[j], exp_boxes[i], atol=1e-4, rtol=0)
        np.testing.assert_allclose(scores[j], exp_scores[i], atol=1e-4, rtol=0)


def _check_losses_and_grads(model: Any, inputs: dict[str, Any], expected: dict[str, Any]) -> None:
    model.train()
    losses = model.forward_train(
        inputs["img"],
        _metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
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


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_neck_features(family: str) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == len(expected["neck"])
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_faster_rcnn_proposals() -> None:
    model, inputs, expected = _load("faster_rcnn")
    model.eval()
    with torch.no_grad():
        proposals = model.rpn_head.simple_test_rpn(
            model.extract_feat(inputs["img"]), _metas(inputs)
        )
    for got, want in zip(proposals, expected["proposals"], strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
@pytest.mark.parametrize("rescale", [False, True])
def test_detections(family: str, rescale: bool) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    key = "dets_rescaled" if rescale else "dets"
    if family == "retinanet":
        key += "_v2"  # v2 dense heads keep zero-size boxes (see the fixtures' README)
    with torch.no_grad():
        results = model.simple_test(inputs["img"], _metas(inputs), rescale=rescale)
    for result, want in zip(results, expected[key], strict=True):
        _match_dets(result, want)


@pytest.fixture()
def one_thread() -> Any:
    """The fixtures were computed with one CPU thread; BN's backward reductions (sums over
    the batch) land on different last bits with more threads, which moves the gradient norms
    of small BN biases by up to ~1e-4 relative."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_losses_and_gradients(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    _check_losses_and_grads(model, inputs, expected)


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_eval_mode_is_deterministic(family: str) -> None:
    model, inputs, _ = _load(family)
    model.eval()
    with torch.no_grad():
        first = model.simple_test(inputs["img"], _metas(inputs))
        second = model.simple_test(inputs["img"], _metas(inputs))
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
