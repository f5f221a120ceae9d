"""Golden parity with MMDetection for YOLOX (../shared/fixtures/mmdet/yolox).

Build the tiny model from the fixture's ``model.py``, load ``weights.pth`` strictly, feed
``inputs.pt`` (raw BGR, padded with 114) and compare neck features, detections with and without
rescale (row by row: YOLOXHead has no ``nms_pre``/``max_per_img``), the losses with the L1 loss
off and on, and every gradient norm with ``expected.pt``. The full-size YOLOX-Tiny config must
give MMDetection's state_dict layout key for key.
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
from tests.models.golden import FIXTURES, check_grad_norms
from tests.models.golden import fixture_metas as _metas
from tests.models.golden import load_fixture as _load

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_neck_features(one_thread: Any) -> None:
    model, inputs, expected = _load("yolox")
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == len(expected["neck"]) == 3
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = _load("yolox")
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        results = model.bbox_head.simple_test(
            model.extract_feat(inputs["img"]), _metas(inputs), rescale=rescale
        )
        per_class = model.simple_test(inputs["img"], _metas(inputs), rescale=rescale)
    assert [len(d) for d, _ in results] == [len(w["labels"]) for w in expected[key]] == [6, 14]
    for (dets, labels), want, arrays in zip(results, expected[key], per_class, strict=True):
        torch.testing.assert_close(labels, want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=1e-6)
        assert sum(len(a) for a in arrays) == len(want["labels"]) and len(arrays) == 80


@pytest.mark.parametrize("use_l1", [False, True])
def test_losses_and_gradients(use_l1: bool, one_thread: Any) -> None:
    model, inputs, expected = _load("yolox")
    model.train()
    model.bbox_head.use_l1 = use_l1
    losses = model.forward_train(
        inputs["img"],
        _metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    want = expected["losses_variants"]["use_l1=True"] if use_l1 else expected["losses"]
    assert set(losses) | {"loss"} == set(want)
    loss, log_vars = parse_losses(losses)
    for name, value in want.items():
        assert log_vars[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    if use_l1:
        return  # the fixture's gradients are those of the default state
    loss.backward()
    check_grad_norms(model, expected, rel=1e-3)


def test_crowd_boxes_change_no_loss(one_thread: Any) -> None:
    """YOLOXHead ignores ``gt_bboxes_ignore`` (v2): the losses are the fixture's without it."""
    model, inputs, expected = _load("yolox")
    model.train()
    with torch.no_grad():
        losses = model.forward_train(
            inputs["img"], _metas(inputs), list(inputs["gt_bboxes"]), list(inputs["gt_labels"])
        )
    for name in ("loss_cls", "loss_bbox", "loss_obj"):
        assert float(losses[name]) == pytest.approx(expected["losses"][name], rel=1e-5), name


def test_full_size_layout() -> None:
    path = FIXTURES / "layouts" / "yolox_tiny.json"
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    expected = json.loads(path.read_text())
    cfg = load_config(CONFIGS / "yolox/yolox_tiny_8x8_300e_coco.py", environ={}).cfg
    with torch.device("meta"):
        model = build_detector(cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"]
