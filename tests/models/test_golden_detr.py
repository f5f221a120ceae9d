"""Golden parity with MMDetection: the DETR and Deformable DETR fixtures (../shared/fixtures).

The fixtures were made by MMDetection 3.3, whose DETR-family keys differ from v2.28's: the
models are built from the v2.28 configs in ``tests/data/v2_models`` and the weights load through
:func:`convert_v3_detr_keys` (every key, strictly). Compared: neck features (DETR's is v2's
``bbox_head.input_proj`` of the backbone output), detections with and without rescale, the
losses of both decoder layers and every gradient norm. Deformable DETR's neck is a
``ChannelMapper`` (Model zoo I); until detforge has one, its head runs on the fixture's neck
features and the backbone/neck comparisons are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import Config, load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from detforge.models.transformers import convert_v3_detr_keys
from detforge.registry import MODELS
from tests.models.golden import FIXTURES, fixture_metas, match_dets

V2_MODELS = Path(__file__).resolve().parents[1] / "data" / "v2_models"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAMILIES = ["detr", "deformable_detr"]


def _has_neck(family: str) -> bool:
    return family == "detr" or "ChannelMapper" in MODELS


def _load(family: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    root = FIXTURES / family
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    cfg = Config.fromfile(V2_MODELS / f"{family}.py").model
    if not _has_neck(family):
        cfg["neck"] = None
    model = build_detector(cfg)
    state = convert_v3_detr_keys(torch.load(root / "weights.pth", weights_only=True)["state_dict"])
    if not _has_neck(family):
        state = {k: v for k, v in state.items() if not k.startswith("neck.")}
    model.load_state_dict(state, strict=True)
    inputs = torch.load(root / "inputs.pt", weights_only=False)
    expected = torch.load(root / "expected.pt", weights_only=True)
    return model, inputs, expected


def _feats(family: str, model: Any, inputs: dict[str, Any], expected: dict[str, Any]) -> Any:
    return model.extract_feat(inputs["img"]) if _has_neck(family) else expected["neck"]


def test_v3_keys_cover_every_tensor() -> None:
    """The key map is one-to-one and lands on exactly our keys (DETR: input_proj from the neck)."""
    for family in FAMILIES:
        root = FIXTURES / family
        if not root.is_dir():
            pytest.skip(f"fixture {root} not found")
        v3 = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
        v2 = convert_v3_detr_keys(v3)
        assert len(v2) == len(v3)
        cfg = Config.fromfile(V2_MODELS / f"{family}.py").model
        if not _has_neck(family):
            cfg["neck"] = None
            v2 = {k: v for k, v in v2.items() if not k.startswith("neck.")}
        assert set(build_detector(cfg).state_dict()) == set(v2)
    detr = convert_v3_detr_keys({"neck.convs.0.conv.weight": torch.zeros(1)})
    assert list(detr) == ["bbox_head.input_proj.weight"]


@pytest.mark.parametrize("family", FAMILIES)
def test_neck_features(family: str, one_thread: Any) -> None:
    if not _has_neck(family):
        pytest.skip("ChannelMapper (Model zoo I) is not in detforge yet")
    model, inputs, expected = _load(family)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        if family == "detr":  # v2 projects inside the head
            feats = [model.bbox_head.input_proj(feats[-1])]
    assert len(feats) == len(expected["neck"])
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("rescale", [False, True])
def test_detections(family: str, rescale: bool, one_thread: Any) -> None:
    """The head's rows in MMDetection's order, and the detector's v2 per-class arrays."""
    model, inputs, expected = _load(family)
    model.eval()
    want = expected["dets_rescaled" if rescale else "dets"]
    metas = fixture_metas(inputs)
    with torch.no_grad():
        results = model.bbox_head.simple_test(
            _feats(family, model, inputs, expected), metas, rescale
        )
        per_class = model.simple_test(inputs["img"], metas, rescale) if _has_neck(family) else []
    assert len(results) == len(want) == 2
    for (dets, labels), exp in zip(results, want, strict=True):
        torch.testing.assert_close(labels, exp["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], exp["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], exp["bboxes"], atol=1e-4, rtol=1e-6)
    for result, exp in zip(per_class, want, strict=False):  # none without a neck
        match_dets(result, exp)


@pytest.mark.parametrize("family", FAMILIES)
def test_losses_and_gradients(family: str, one_thread: Any) -> None:
    model, inputs, expected = _load(family)
    model.train()
    metas = fixture_metas(inputs)
    gt_bboxes, gt_labels = list(inputs["gt_bboxes"]), list(inputs["gt_labels"])
    if _has_neck(family):
        losses = model.forward_train(inputs["img"], metas, gt_bboxes, gt_labels, None)
    else:
        losses = model.bbox_head.forward_train(expected["neck"], metas, gt_bboxes, gt_labels)
    prefixes = ("", "d0.")
    assert list(losses) == [p + n for p in prefixes for n in ("loss_cls", "loss_bbox", "loss_iou")]
    loss, log_vars = parse_losses(losses)
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    grads = expected["grads_all"]
    names = dict(zip(grads, convert_v3_detr_keys(grads), strict=True))  # the whole dict at once
    want = {
        names[k]: norm
        for k, norm in grads.items()
        if _has_neck(family) or names[k].startswith("bbox_head.")
    }
    if _has_neck(family):
        assert len(want) == len(expected["grads_all"])
    for name, norm in want.items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(float(norm), rel=1e-3, abs=1e-8), name
    assert {n for n, p in params.items() if p.grad is not None} == set(want)


@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ("detr/detr_r50_8x2_150e_coco.py", "detr_r50.json"),
        ("deformable_detr/deformable_detr_r50_16x2_50e_coco.py", "deformable_detr_r50.json"),
    ],
)
def test_full_size_layout(config: str, layout: str) -> None:
    """MMDetection 3.3's layout mapped to v2 names: our keys, shapes and parameter counts.

    ``configs/deformable_detr`` ships once detforge has ``ChannelMapper`` (Model zoo I).
    """
    path, cfg_path = FIXTURES / "layouts" / layout, CONFIGS / config
    if not path.is_file() or not cfg_path.is_file():
        pytest.skip(f"{path} or {cfg_path} not found")
    expected = json.loads(path.read_text())
    cfg = load_config(cfg_path, environ={}).cfg.model
    with_neck = _has_neck(config.split("/")[0])
    if not with_neck:  # compare the rest until ChannelMapper (Model zoo I) lands
        cfg["neck"] = None
    with torch.device("meta"):
        model = build_detector(cfg)
    v3 = {k: torch.empty(0) for k, _ in expected["state_dict"]}
    names = dict(zip(v3, convert_v3_detr_keys(v3), strict=True))
    want = {names[k]: shape for k, shape in expected["state_dict"]}
    neck = {k: shape for k, shape in want.items() if k.startswith("neck.")}
    if not with_neck:
        want = {k: shape for k, shape in want.items() if k not in neck}
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == want
    # Deformable DETR's prediction layers are one module under every index (v2 and 3.3 alike)
    skipped = 0 if with_neck else sum(torch.Size(s).numel() for s in neck.values())
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"] - skipped
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"] - skipped
