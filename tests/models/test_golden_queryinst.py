"""Golden parity with MMDetection 3.3: a tiny QueryInst (tests/data/goldens/queryinst).

The model is the shared Sparse R-CNN fixture's (same weights, same two images) with QueryInst's
mask branch on both stages (``mask_heads.pt``, seeded random weights); ``tools/goldens/
queryinst.py`` made the expected outputs with MMDetection 3.3.0. Checked: detections with and
without rescale, the masks of the rescaled detections, every stage's losses (v2's
``stage{i}_*`` names for MMDetection 3's ``s{i}.*``) and every gradient norm; the full-size
layout of ``queryinst_r50_fpn_1x_coco.py``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.config import Config, load_config
from detforge.models import build_detector
from detforge.models.detectors import SparseRCNN
from detforge.models.roi_heads import DynamicMaskHead
from detforge.structures.masks import BitmapMasks, rle_decode
from tests.models.golden import FIXTURES, dets_from_v2
from tests.models.golden import fixture_metas as _metas
from tests.models.test_golden_sparse_rcnn import assert_losses_and_gradients

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "goldens" / "queryinst"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAMES = ["loss_cls", "pos_acc", "loss_bbox", "loss_iou", "loss_mask"]


def _load() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    root = FIXTURES / "sparse_rcnn"
    if not root.is_dir():
        pytest.skip(f"fixture {root} not found")
    model = build_detector(Config.fromfile(GOLDEN / "model.py").model)
    state = torch.load(root / "weights.pth", weights_only=True)["state_dict"]
    state.update(torch.load(GOLDEN / "mask_heads.pt", weights_only=True))
    model.load_state_dict(state, strict=True)
    inputs = torch.load(root / "inputs.pt", weights_only=False)
    shapes = [meta["pad_shape"][:2] for meta in inputs["img_metas"]]
    inputs["gt_masks"] = []
    for rles, (h, w) in zip(torch.load(GOLDEN / "gt_masks.pt"), shapes, strict=True):
        # stored padded to the batch (MMDetection 3); v2's Pad pads them to the image's pad_shape
        masks = np.stack([rle_decode(r) for r in rles]).astype(np.uint8)[:, :h, :w]
        inputs["gt_masks"].append(BitmapMasks(np.ascontiguousarray(masks), h, w))
    return model, inputs, torch.load(GOLDEN / "expected.pt", weights_only=False)


@pytest.fixture(scope="module")
def golden() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    model, inputs, expected = _load()
    model.eval()
    return model, inputs, expected


def _sorted_rows(bbox_result: Any, segm_result: Any) -> list[tuple[Any, int, Any]]:
    rows = [
        (box, label, mask)
        for label, (boxes, masks) in enumerate(zip(bbox_result, segm_result, strict=True))
        for box, mask in zip(boxes, masks, strict=True)
    ]
    order = np.argsort(-np.array([r[0][4] for r in rows]), kind="stable")
    return [rows[k] for k in order]


def test_model_is_sparse_rcnn_with_mask_heads(golden: Any) -> None:
    model, _, _ = golden
    assert isinstance(model, SparseRCNN)
    assert [type(h) for h in model.roi_head.mask_head] == [DynamicMaskHead] * 2


@pytest.mark.parametrize("rescale", [False, True])
def test_detections_and_masks(golden: Any, rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = golden
    with torch.no_grad():
        results = model.simple_test(inputs["img"], _metas(inputs), rescale=rescale)
    key = "dets_rescaled" if rescale else "dets"
    for i, (bbox_result, segm_result) in enumerate(results):
        want = expected[key][i]
        order = torch.argsort(-want["scores"], stable=True)
        boxes, scores, labels = dets_from_v2(bbox_result)
        np.testing.assert_array_equal(labels, want["labels"][order].numpy())
        np.testing.assert_allclose(scores, want["scores"][order].numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(boxes, want["bboxes"][order].numpy(), atol=1e-4, rtol=0)
        if not rescale:
            continue
        rows = _sorted_rows(bbox_result, segm_result)
        ori_h, ori_w = inputs["img_metas"][i]["ori_shape"][:2]
        for row, k in zip(rows, order.tolist(), strict=True):
            want_mask = rle_decode(expected["masks"][i][k]).astype(bool)
            got = row[2]
            assert got.dtype == bool and got.shape == want_mask.shape == (ori_h, ori_w)
            union = np.logical_or(got, want_mask).sum()
            assert np.logical_and(got, want_mask).sum() >= 0.99 * union


def test_losses_and_gradients(one_thread: Any) -> None:
    model, inputs, expected = _load()
    model.train()
    losses = model.forward_train(
        inputs["img"],
        _metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        None,
        inputs["gt_masks"],
    )
    assert_losses_and_gradients(model, losses, expected, NAMES)


def test_mask_loss_without_positives_is_zero(golden: Any) -> None:
    model, inputs, _ = golden
    empty = [torch.zeros(0, 4)] * 2
    masks = [BitmapMasks(np.zeros((0, 224, 320), np.uint8), 224, 320)] * 2
    model.train()
    try:
        with torch.no_grad():
            losses = model.forward_train(
                inputs["img"],
                _metas(inputs),
                empty,
                [torch.zeros(0, dtype=torch.long)] * 2,
                None,
                masks,
            )
    finally:
        model.eval()
    assert float(losses["stage1_loss_mask"]) == 0
    assert float(losses["stage1_loss_cls"]) > 0


def test_full_size_layout() -> None:
    with gzip.open(GOLDEN / "layout_queryinst_r50.json.gz", "rt") as f:
        expected = json.load(f)
    cfg = load_config(CONFIGS / "queryinst" / "queryinst_r50_fpn_1x_coco.py", environ={}).cfg
    with torch.device("meta"):
        model = build_detector(cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"]
