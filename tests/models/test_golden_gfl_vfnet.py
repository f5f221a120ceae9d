"""Golden parity with MMDetection for GFL and VFNet (../shared/fixtures/mmdet/{gfl,vfnet}).

For each fixture: build the model from its ``model.py``, load ``weights.pth`` strictly, feed
``inputs.pt``, and compare neck features, detections (v2 semantics: ``dets_v2`` /
``dets_rescaled_v2``), losses (per level where the head returns lists) and gradient norms
with ``expected.pt`` at the README's tolerances. Also: the full-size R50 layouts, and the
empty-ground-truth property of both heads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config, load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from tests.models.golden import FIXTURES
from tests.models.golden import fixture_metas as _metas
from tests.models.golden import load_fixture as _load
from tests.models.golden import match_dets as _match_dets

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAMILIES = ["gfl", "vfnet"]


@pytest.mark.parametrize("family", FAMILIES)
def test_neck_features(family: str) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == len(expected["neck"]) == 5
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("rescale", [False, True])
def test_detections(family: str, rescale: bool) -> None:
    model, inputs, expected = _load(family)
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        results = model.simple_test(inputs["img"], _metas(inputs), rescale=rescale)
        raw = model.bbox_head.simple_test(
            model.extract_feat(inputs["img"]), _metas(inputs), rescale=rescale
        )
    for result, want in zip(results, expected[key], strict=True):
        _match_dets(result, want)
    # the head's own output is in MMDetection's order: compare it row by row as well
    for (dets, labels), want in zip(raw, expected[key], strict=True):
        assert dets.shape == (len(want["bboxes"]), 5)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        assert torch.equal(labels, want["labels"])


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
    loss, log_vars = parse_losses(losses)
    assert set(log_vars) == set(expected["losses"])
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
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-4, abs=1e-8), name
    with_grad = {n for n, p in params.items() if p.grad is not None}
    assert with_grad == set(expected["grads_all"])


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ("gfl/gfl_r50_fpn_1x_coco.py", "gfl_r50.json"),
        ("vfnet/vfnet_r50_fpn_1x_coco.py", "vfnet_r50.json"),
    ],
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


def _tiny(family: str, **head: Any) -> Any:
    path = FIXTURES / family / "model.py"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    cfg = Config.fromfile(path).model
    cfg.bbox_head.update(head)
    torch.manual_seed(0)
    model = build_detector(cfg)
    model.init_weights()
    return model


def _metas_of(n: int, size: int = 64) -> list[dict[str, Any]]:
    return [
        dict(
            img_shape=(size, size, 3),
            ori_shape=(size, size, 3),
            pad_shape=(size, size, 3),
            scale_factor=np.ones(4, dtype=np.float32),
            flip=False,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize(
    ("family", "head"),
    [
        ("gfl", {}),
        ("vfnet", {}),
        ("vfnet", {"use_atss": False}),
        ("vfnet", {"use_vfl": False}),
    ],
)
def test_empty_ground_truth(family: str, head: dict[str, Any]) -> None:
    """No ground truth: positive classification loss, zero box/quality losses, grads flow."""
    model = _tiny(family, **head)
    model.train()
    img = torch.randn(2, 3, 64, 64)
    losses = model.forward_train(
        img, _metas_of(2), [torch.zeros(0, 4)] * 2, [torch.zeros(0, dtype=torch.long)] * 2
    )
    names = {"gfl": {"loss_cls", "loss_bbox", "loss_dfl"}}.get(
        family, {"loss_cls", "loss_bbox", "loss_bbox_rf"}
    )
    assert set(losses) == names
    total: dict[str, torch.Tensor] = {
        k: torch.stack(v).sum() if isinstance(v, list) else v for k, v in losses.items()
    }
    assert float(total["loss_cls"].detach()) > 0
    for name in names - {"loss_cls"}:
        assert float(total[name].detach()) == 0, name
    loss, _ = parse_losses(losses)
    loss.backward()  # the zero losses stay connected to the graph


@pytest.mark.parametrize(
    ("family", "head"), [("gfl", {}), ("vfnet", {}), ("vfnet", {"use_atss": False})]
)
def test_one_box_trains_and_tests(family: str, head: dict[str, Any]) -> None:
    """A non-empty image gives finite positive box losses and v2 results of the right shape."""
    model = _tiny(family, **head)
    model.train()
    img = torch.randn(1, 3, 64, 64)
    boxes = [torch.tensor([[4.0, 6.0, 40.0, 50.0]])]
    losses = model.forward_train(img, _metas_of(1), boxes, [torch.tensor([3])])
    loss, log_vars = parse_losses(losses)
    assert torch.isfinite(loss)
    assert all(v > 0 for k, v in log_vars.items() if k.startswith("loss"))
    model.eval()
    with torch.no_grad():
        results = model.simple_test(img, _metas_of(1), rescale=True)
    assert len(results) == 1 and len(results[0]) == 80
    assert all(r.ndim == 2 and r.shape[1] == 5 for r in results[0])
