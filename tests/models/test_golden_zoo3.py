"""Golden parity with MMDetection 3.3 of the Model zoo III goldens: HTC with its semantic
branch, SCNet, Mask Scoring R-CNN and PointRend (tests/data/goldens, tools/goldens).

Per family: neck features (1e-4), proposals, detections with and without rescale (every
expected detection has a same-class partner, boxes 1e-4, scores 1e-4), the masks of the
rescaled detections (IoU >= 0.99 rank by rank), the training losses (rel 1e-5, seeded), the
gradient norm of every parameter (rel 1e-3, one thread) and the full-size layout of the
family's standard config (keys, shapes, parameter counts).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.detectors import parse_losses
from tests.models.golden import match_dets
from tests.models.zoo3_goldens import (
    CONFIGS,
    GOLDENS,
    assert_masks_match,
    forward_train,
    load_zoo3,
    rows_with_masks,
)

FAMILIES = ["htc", "scnet", "ms_rcnn", "point_rend"]
STANDARD_CONFIGS = {
    "htc": "htc/htc_r50_fpn_1x_coco.py",
    "scnet": "scnet/scnet_r50_fpn_1x_coco.py",
    "ms_rcnn": "ms_rcnn/ms_rcnn_r50_caffe_fpn_1x_coco.py",
    "point_rend": "point_rend/point_rend_r50_caffe_fpn_mstrain_1x_coco.py",
}


@pytest.fixture(scope="module", params=FAMILIES)
def golden(request: pytest.FixtureRequest) -> tuple[str, Any, dict[str, Any], dict[str, Any]]:
    model, inputs, expected = load_zoo3(request.param)
    return request.param, model, inputs, expected


@pytest.fixture(scope="module")
def results(golden: Any) -> dict[bool, list[Any]]:
    _, model, inputs, _ = golden
    with torch.no_grad():
        return {
            r: model.simple_test(inputs["img"], [dict(m) for m in inputs["img_metas"]], rescale=r)
            for r in (False, True)
        }


def test_neck_features(golden: Any) -> None:
    _, model, inputs, expected = golden
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == len(expected["neck"])
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_proposals(golden: Any, one_thread: Any) -> None:
    _, model, inputs, expected = golden
    with torch.no_grad():
        proposals = model.rpn_head.simple_test_rpn(
            model.extract_feat(inputs["img"]), [dict(m) for m in inputs["img_metas"]]
        )
    for got, want in zip(proposals, expected["proposals"], strict=True):
        assert got.shape == want.shape
        bad = ((got - want).abs() > 1e-4).any(dim=1).nonzero().flatten().tolist()
        assert len(bad) <= 4, bad  # proposals whose scores differ by ~1e-8 may swap places
        for i in bad:
            close = ((got - want[i]).abs().max(dim=1).values < 1e-4).any()
            assert close, f"expected proposal {i} {want[i].tolist()} not found"


def _v2_expected(family: str, expected: dict[str, Any], rescale: bool) -> list[dict[str, Any]]:
    """The expected v2 box results: MMDetection 3.3's Mask Scoring R-CNN reports mask scores
    as detection scores; v2 keeps the box head's (``box_dets``, same rows)."""
    dets = expected["dets_rescaled" if rescale else "dets"]
    if family != "ms_rcnn":
        return list(dets)
    return [dict(d, scores=b["scores"]) for d, b in zip(dets, expected["box_dets"], strict=True)]


@pytest.mark.parametrize("rescale", [False, True])
def test_detections(golden: Any, results: Any, rescale: bool) -> None:
    family, _, _, expected = golden
    for (bbox_result, _), want in zip(
        results[rescale], _v2_expected(family, expected, rescale), strict=True
    ):
        assert len(bbox_result) == 80 and all(r.dtype == np.float32 for r in bbox_result)
        assert sum(len(r) for r in bbox_result) > 0
        match_dets(bbox_result, want)


def test_masks_of_rescaled_detections(golden: Any, results: Any) -> None:
    family, _, inputs, expected = golden
    for i, (bbox_result, segm) in enumerate(results[True]):
        mask_scores = None
        if family == "ms_rcnn":
            segm, mask_scores = segm
        rows = rows_with_masks(bbox_result, segm)
        want = _v2_expected(family, expected, rescale=True)[i]
        assert_masks_match(rows, want, expected["masks"][i], min_iou=0.99)
        h, w = inputs["img_metas"][i]["ori_shape"][:2]
        assert all(r[2].shape == (h, w) for r in rows)
        if mask_scores is not None:
            # v2's mask scores are MMDetection 3.3's rescored detection scores (same ranks)
            ranked = rows_with_masks(bbox_result, [list(s) for s in mask_scores])
            got = np.array([r[2] for r in ranked], dtype=np.float32)
            want = expected["dets_rescaled"][i]["scores"].numpy()
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_losses_and_gradients(golden: Any, one_thread: Any) -> None:
    _, model, inputs, expected = golden
    model.train()
    try:
        losses = forward_train(model, inputs)
        loss, log_vars = parse_losses(losses)
        loss.backward()
    finally:
        model.eval()
    assert set(log_vars) == set(expected["losses"])
    for name, value in expected["losses"].items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    params = dict(model.named_parameters())
    with_grad = {n for n, p in params.items() if p.grad is not None}
    assert with_grad == set(expected["grads_all"])
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-3, abs=1e-7), name
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_full_size_layout(family: str) -> None:
    layout = json.loads((GOLDENS / family / "layout.json").read_text())
    cfg = load_config(CONFIGS / STANDARD_CONFIGS[family], environ={}).cfg
    model = build_detector(cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert sorted(got) == sorted(layout["state_dict"])
    assert sum(p.numel() for p in model.parameters()) == layout["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == layout["num_trainable_params"]
