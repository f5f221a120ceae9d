"""Golden parity with MMDetection: the Sparse R-CNN fixture (fixtures/mmdet/sparse_rcnn).

Builds the tiny model from ``model.py`` (its assigners are written in MMDetection 3's
``match_costs=[cls, reg, iou]`` form, mapped here onto v2's ``cls_cost``/``reg_cost``/
``iou_cost``), loads ``weights.pth`` strictly (v2's key layout), feeds ``inputs.pt`` and
compares neck features, proposals, detections (with and without rescale), the per-stage losses
(v2's ``stage{i}_*`` names for MMDetection 3's ``s{i}.*``) and every gradient norm. Also the
full-size layout of ``sparse_rcnn_r50_fpn_1x_coco.py`` and a few properties.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config, load_config
from detforge.models import build_detector
from detforge.models.dense_heads import EmbeddingRPNHead
from detforge.models.detectors import SparseRCNN, parse_losses
from detforge.models.roi_heads import DIIHead, SparseRoIHead
from tests.models.golden import FIXTURES, dets_from_v2
from tests.models.golden import fixture_metas as _metas

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAMES = ["loss_cls", "pos_acc", "loss_bbox", "loss_iou"]


def v2_model_cfg(model: dict[str, Any]) -> dict[str, Any]:
    """The fixture's model config with MMDetection 3's ``match_costs`` list as v2's keys."""
    model = copy.deepcopy(model)
    for stage in model["train_cfg"]["rcnn"]:
        costs = stage["assigner"].pop("match_costs")
        stage["assigner"].update(cls_cost=costs[0], reg_cost=costs[1], iou_cost=costs[2])
    return model


def _load() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    root = FIXTURES / "sparse_rcnn"
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    model = build_detector(v2_model_cfg(Config.fromfile(root / "model.py").model.to_dict()))
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    model.load_state_dict(state, strict=True)
    inputs = torch.load(root / "inputs.pt", weights_only=False)
    expected = torch.load(root / "expected.pt", weights_only=True)
    return model, inputs, expected


@pytest.fixture(scope="module")
def golden() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    model, inputs, expected = _load()
    model.eval()
    return model, inputs, expected


def _forward_train(model: Any, inputs: dict[str, Any], empty: bool = False) -> dict[str, Any]:
    n = len(inputs["gt_bboxes"])
    if empty:
        boxes, labels = [torch.zeros(0, 4)] * n, [torch.zeros(0, dtype=torch.long)] * n
    else:
        boxes, labels = list(inputs["gt_bboxes"]), list(inputs["gt_labels"])
    losses: dict[str, Any] = model.forward_train(
        inputs["img"], _metas(inputs), boxes, labels, list(inputs["gt_bboxes_ignore"])
    )
    return losses


def assert_losses_and_gradients(
    model: Any, losses: dict[str, Any], expected: dict[str, Any], names: list[str]
) -> None:
    """v2's ``stage{i}_*`` losses equal MMDetection 3's ``s{i}.*`` (rel 1e-5); after
    ``backward`` every gradient norm too (rel 1e-3) and the same parameters have gradients."""
    stages = len(model.roi_head.bbox_head)
    assert list(losses) == [f"stage{i}_{n}" for i in range(stages) for n in names]
    loss, log_vars = parse_losses(losses)
    assert log_vars["loss"] == pytest.approx(expected["losses"]["loss"], rel=1e-5)
    for i in range(stages):
        for name in names:
            want = expected["losses"][f"s{i}.{name}"]
            assert log_vars[f"stage{i}_{name}"] == pytest.approx(want, rel=1e-5, abs=1e-6), name
    loss.backward()
    params = dict(model.named_parameters())
    for name, norm in expected["grads_all"].items():
        grad = params[name].grad
        assert grad is not None, name
        assert float(grad.norm(2)) == pytest.approx(norm, rel=1e-3, abs=1e-8), name
    assert {n for n, p in params.items() if p.grad is not None} == set(expected["grads_all"])


def test_model_layout(golden: Any) -> None:
    model, _, _ = golden
    assert isinstance(model, SparseRCNN) and isinstance(model.roi_head, SparseRoIHead)
    assert isinstance(model.rpn_head, EmbeddingRPNHead)
    assert all(isinstance(h, DIIHead) for h in model.roi_head.bbox_head)
    assert [h.fc_cls.out_features for h in model.roi_head.bbox_head] == [80, 80]


def test_neck_and_proposals(golden: Any) -> None:
    model, inputs, expected = golden
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        boxes, features, whwh = model.rpn_head.simple_test_rpn(feats, _metas(inputs))
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert len(expected["proposals"]) == len(boxes)
    for got, want in zip(boxes, expected["proposals"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-6)
    assert features.shape == (2, 20, 32)
    assert whwh[:, 0].tolist() == [[320.0, 215.0, 320.0, 215.0], [320.0, 163.0, 320.0, 163.0]]


@pytest.mark.parametrize("rescale", [False, True])
def test_detections(golden: Any, rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = golden
    with torch.no_grad():
        results = model.simple_test(inputs["img"], _metas(inputs), rescale=rescale)
    key = "dets_rescaled" if rescale else "dets"
    assert len(results) == 2
    for result, want in zip(results, expected[key], strict=True):
        assert len(result) == 80 and all(r.dtype == np.float32 for r in result)
        boxes, scores, labels = dets_from_v2(result)
        # same detections in the same score order; scores agree to 1e-7, boxes to 2.2e-4 px
        # (150 px boxes): MMDetection 3.3 itself, re-run on this machine, reproduces our stage
        # outputs bit for bit but differs from this expected.pt by as much (another CPU's
        # float32 sums, amplified by exp() of the box deltas); tests/data/goldens/queryinst,
        # made here, is matched exactly
        np.testing.assert_array_equal(labels, want["labels"].numpy())
        np.testing.assert_allclose(scores, want["scores"].numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(boxes, want["bboxes"].numpy(), atol=5e-4, rtol=0)


def test_losses_and_gradients(one_thread: Any) -> None:
    model, inputs, expected = _load()
    model.train()
    losses = _forward_train(model, inputs)
    assert_losses_and_gradients(model, losses, expected, NAMES)


def test_empty_ground_truth_gives_zero_box_losses(golden: Any) -> None:
    model, inputs, _ = golden
    model.train()
    try:
        with torch.no_grad():
            losses = _forward_train(model, inputs, empty=True)
    finally:
        model.eval()
    for i in range(2):
        assert float(losses[f"stage{i}_loss_cls"]) > 0
        assert float(losses[f"stage{i}_loss_bbox"]) == 0
        assert float(losses[f"stage{i}_loss_iou"]) == 0


def test_stage_loss_weights_scale_every_entry(golden: Any, one_thread: Any) -> None:
    model, inputs, expected = golden
    model.roi_head.stage_loss_weights = [1.0, 0.5]
    model.train()
    try:
        with torch.no_grad():
            losses = _forward_train(model, inputs)
    finally:
        model.roi_head.stage_loss_weights = [1.0, 1.0]
        model.eval()
    for name in NAMES:
        want = expected["losses"][f"s1.{name}"] * 0.5
        assert float(losses[f"stage1_{name}"]) == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_external_proposals_and_tta_are_refused(golden: Any) -> None:
    model, inputs, _ = golden
    with pytest.raises(ValueError, match="external proposals"):
        model.simple_test(inputs["img"], _metas(inputs), proposals=[torch.zeros(1, 4)])
    with pytest.raises(NotImplementedError, match="test-time augmentation"):
        model.aug_test([inputs["img"]], [_metas(inputs)])


def test_sampler_must_be_pseudo() -> None:
    root = FIXTURES / "sparse_rcnn"
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    cfg = v2_model_cfg(Config.fromfile(root / "model.py").model.to_dict())
    cfg["train_cfg"]["rcnn"][1]["sampler"] = dict(type="RandomSampler", num=8, pos_fraction=0.5)
    with pytest.raises(ValueError, match=r"train_cfg\[1\].sampler must be PseudoSampler"):
        build_detector(cfg)


def test_full_size_layout() -> None:
    path = FIXTURES / "layouts" / "sparse_rcnn_r50.json"
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    expected = json.loads(path.read_text())
    cfg = load_config(CONFIGS / "sparse_rcnn" / "sparse_rcnn_r50_fpn_1x_coco.py", environ={}).cfg
    with torch.device("meta"):
        model = build_detector(cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"]
