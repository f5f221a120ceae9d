"""Golden parity with MMDetection: the SSDLite and YOLOv3 fixtures (../shared/fixtures/mmdet).

Each tiny model (MobileNetV2 ×0.25 with a depthwise SSDNeck/SSDHead, or with YOLOV3Neck/
YOLOV3Head) is built from the fixture's ``model.py``, loads ``weights.pth`` strictly and must
reproduce the neck maps, the detections row by row against the v2 variants (with and without
rescale; for YOLOv3 v2 sends every candidate to the NMS, unlike MMDetection 3's ``nms_pre``),
the losses (SSD: one value per image; YOLOv3: per level) and every gradient norm.

Gradient norms: the BN biases of MobileNetV2's linear (activation-free) convs feed another BN,
so their exact gradient is 0 and the float32 values (1e-9 to 1e-5 in both implementations) are
rounding noise; norms are compared with ``rel=1e-4`` plus an absolute ``1e-6`` of the largest.
The full-size SSDLite and YOLOv3 layouts are checked in tests/models/test_full_layouts.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from tests.models.golden import (
    assert_losses_and_grads,
    check_dets_rows,
    fixture_metas,
    load_fixture,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: family -> (neck map widths, detections per image, loss names)
FAMILIES = {
    "ssd": ([20, 10, 5, 3, 2, 1], 200, {"loss_cls", "loss_bbox"}),
    "yolov3": ([10, 20, 40], 100, {"loss_cls", "loss_conf", "loss_xy", "loss_wh"}),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_neck_features(family: str, one_thread: Any) -> None:
    model, inputs, expected = load_fixture(family)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
    assert [f.shape[-1] for f in feats] == FAMILIES[family][0]
    for got, want in zip(feats, expected["neck"], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("rescale", [False, True])
def test_detections_row_by_row(family: str, rescale: bool, one_thread: Any) -> None:
    model, inputs, expected = load_fixture(family)
    model.eval()
    key = "dets_rescaled_v2" if rescale else "dets_v2"
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        results = model.bbox_head.simple_test(feats, fixture_metas(inputs), rescale=rescale)
    assert len(results) == 2
    check_dets_rows(results, expected[key], FAMILIES[family][1])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_losses_and_gradients(family: str, one_thread: Any) -> None:
    model, inputs, expected = load_fixture(family)
    model.train()
    losses = model.forward_train(
        inputs["img"],
        fixture_metas(inputs),
        list(inputs["gt_bboxes"]),
        list(inputs["gt_labels"]),
        list(inputs["gt_bboxes_ignore"]),
    )
    assert set(losses) == FAMILIES[family][2]
    assert_losses_and_grads(
        model, losses, expected, grad_abs=1e-6 * max(expected["grads_all"].values())
    )


@pytest.mark.parametrize(
    ("config", "num_params", "num_entries"),
    [("ssd/ssd300_coco.py", 34_305_206, 71), ("yolo/yolov3_d53_320_273e_coco.py", 61_949_149, 438)],
)
def test_vgg_and_darknet_sizes(config: str, num_params: int, num_entries: int) -> None:
    """MMDetection 3.3.0 builds these counts from its ssd300_coco.py and
    yolov3_d53_8xb8-320-273e_coco.py (keys and shapes checked equal to ours when written)."""
    model = build_detector(load_config(CONFIGS / config, environ={}).cfg.model)
    assert sum(p.numel() for p in model.parameters()) == num_params
    assert len(model.state_dict()) == num_entries


def test_ssd300_anchors_and_final_convs() -> None:
    """SSD300: v2's 4/6/6/6/4/4 anchors per cell, 8732 in all, and 3x3 final convs."""
    model = build_detector(load_config(CONFIGS / "ssd/ssd300_coco.py", environ={}).cfg.model)
    head = model.bbox_head
    assert head.prior_generator.num_base_priors == [4, 6, 6, 6, 4, 4]
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert sum(len(a) for a in head.prior_generator.grid_priors(sizes)) == 8732
    assert [tuple(m[-1].weight.shape) for m in head.cls_convs] == [
        (324, 512, 3, 3),
        (486, 1024, 3, 3),
        (486, 512, 3, 3),
        (486, 256, 3, 3),
        (324, 256, 3, 3),
        (324, 256, 3, 3),
    ]
