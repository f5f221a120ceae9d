"""Golden parity with MMDetection: the CenterNet fixture (../shared/fixtures/mmdet/centernet).

ResNet-18 (16 base channels) + CTResNetNeck (DCNv2) + CenterNetHead, built from the fixture's
``model.py`` (3.3 argument names turned into v2's), ``weights.pth`` loaded strictly. Compared:
neck features, the 100 detections per image row by row (local maximum + top-k decoding, no NMS,
with and without rescale), the three losses (gaussian heatmap targets, GaussianFocalLoss, L1)
and every gradient norm. Observed: boxes within 3.1e-5 px, scores 3e-8, losses rel 7e-8, grad
norms rel 1.3e-4 (DCNv2's float32 sums). The full-size standard config has MMDetection's
state_dict layout key for key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.models.golden import (
    FIXTURES,
    assert_full_layout,
    assert_losses_and_grads,
    fixture_metas,
    load_fixture,
)

CONFIG = Path(__file__).resolve().parents[2] / "configs/centernet"


def test_neck_features(one_thread: Any) -> None:
    model, inputs, expected = load_fixture("centernet")
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert len(feats) == len(expected["neck"]) == 1
    torch.testing.assert_close(feats[0], expected["neck"][0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = load_fixture("centernet")
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        results = model.bbox_head.simple_test(feats, fixture_metas(inputs), rescale=rescale)
    assert len(results) == len(expected[key]) == 2
    for (dets, labels), want in zip(results, expected[key], strict=True):
        assert dets.shape == (100, 5)
        torch.testing.assert_close(labels, want["labels"], atol=0, rtol=0)
        torch.testing.assert_close(dets[:, 4], want["scores"], atol=1e-4, rtol=0)
        torch.testing.assert_close(dets[:, :4], want["bboxes"], atol=1e-4, rtol=1e-6)


def test_simple_test_gives_v2_per_class_arrays(one_thread: Any) -> None:
    model, inputs, expected = load_fixture("centernet")
    model.eval()
    with torch.no_grad():
        results = model.simple_test(inputs["img"], fixture_metas(inputs), rescale=True)
    for per_class, want in zip(results, expected["dets_rescaled_v2"], strict=True):
        assert len(per_class) == 80
        counts = np.bincount(want["labels"].numpy(), minlength=80)
        assert [len(arr) for arr in per_class] == counts.tolist()


def test_border_is_subtracted_before_rescale(one_thread: Any) -> None:
    """``RandomCenterCropPad``'s ``border`` (top, bottom, left, right) moves the boxes back."""
    model, inputs, _ = load_fixture("centernet")
    model.eval()
    metas = fixture_metas(inputs)
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        plain = model.bbox_head.simple_test(feats, metas, rescale=True)
        for meta in metas:
            meta["border"] = np.array([10.0, 0.0, 20.0, 0.0], dtype=np.float32)
        moved = model.bbox_head.simple_test(feats, metas, rescale=True)
    for (a, _), (b, _), meta in zip(plain, moved, metas, strict=True):
        shift = torch.tensor([20.0, 10.0, 20.0, 10.0]) / torch.from_numpy(meta["scale_factor"])
        torch.testing.assert_close(a[:, :4] - shift, b[:, :4])


def test_losses_and_gradients(one_thread: Any) -> None:
    model, inputs, expected = load_fixture("centernet")
    model.train()
    losses = model.forward_train(
        inputs["img"],
        fixture_metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    assert set(losses) == {"loss_center_heatmap", "loss_wh", "loss_offset"}
    assert_losses_and_grads(model, losses, expected)


def test_flip_aug_test_averages_the_pair(one_thread: Any) -> None:
    """v2's flip test: heatmaps and sizes of the pair averaged (the flipped ones flipped back),
    offsets of the unflipped view, decoded like one view; no NMS without ``nms_cfg``."""
    model, inputs, _ = load_fixture("centernet")
    model.eval()
    img = inputs["img"][:1]
    meta = fixture_metas(inputs)[0]
    flipped = dict(meta, flip=True, flip_direction="horizontal")
    head = model.bbox_head
    with torch.no_grad():
        aug = model.forward_test([img, img.flip(3)], [[meta], [flipped]], rescale=True)[0]
        heat, wh, offset = (m[0] for m in head(model.extract_feat(torch.cat([img, img.flip(3)]))))
        dets, labels = head.get_bboxes(
            [(heat[:1] + heat[1:].flip(3)) / 2],
            [(wh[:1] + wh[1:].flip(3)) / 2],
            [offset[:1]],
            [meta],
            rescale=True,
        )[0]
        single = model.simple_test(img, [meta], rescale=True)[0]
    assert sum(len(arr) for arr in aug) == 100
    for label, arr in enumerate(aug):
        np.testing.assert_allclose(arr, dets[labels == label].numpy(), atol=1e-4, rtol=1e-6)
    assert any(len(a) != len(b) for a, b in zip(aug, single, strict=True))  # not the single view
    with pytest.raises(ValueError, match="flipped view"):
        model.aug_test([img, img], [[meta], [meta]])


def test_full_size_layout() -> None:
    path = FIXTURES / "layouts" / "centernet_r18_dcnv2.json"
    if not path.is_file():
        pytest.skip(f"layout {path} not found")
    assert_full_layout(
        CONFIG / "centernet_resnet18_dcnv2_140e_coco.py", json.loads(path.read_text())
    )
