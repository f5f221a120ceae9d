"""Double-Head R-CNN against MMDetection 3.3 (tests/data/goldens/double_heads), its full-size
layout, and the head's own checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.roi_heads import DoubleConvFCBBoxHead, DoubleHeadRoIHead
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    check_proposals,
    load_golden,
    metas,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"


@pytest.fixture(scope="module")
def golden() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    return load_golden("double_heads")


def test_proposals_and_detections(golden: Any, one_thread: Any) -> None:
    model, inputs, expected = golden
    assert isinstance(model.roi_head, DoubleHeadRoIHead)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        check_proposals(model.rpn_head.simple_test_rpn(feats, metas(inputs)), expected["proposals"])
    check_detections(model, inputs, expected)


def test_losses_and_gradients(golden: Any, one_thread: Any) -> None:
    model, inputs, expected = golden
    check_losses_and_grads(model, inputs, expected)


def test_regression_branch_sees_enlarged_rois(golden: Any) -> None:
    """The two pooled inputs differ exactly by the RoI enlargement."""
    model, inputs, _ = golden
    head = model.roi_head
    rois = torch.tensor([[0.0, 40.0, 30.0, 120.0, 100.0]])
    seen: list[torch.Tensor] = []
    hook = head.bbox_head.register_forward_pre_hook(lambda _m, args: seen.extend(args))
    try:
        with torch.no_grad():
            feats = model.extract_feat(inputs["img"])
            head._bbox_forward(feats, rois)
    finally:
        hook.remove()
    extractor = head.bbox_roi_extractor
    with torch.no_grad():
        plain = extractor(feats[:4], rois)
        wide = extractor(feats[:4], rois, roi_scale_factor=1.3)
    torch.testing.assert_close(seen[0], plain)
    torch.testing.assert_close(seen[1], wide)
    assert not torch.allclose(plain, wide)


def test_full_size_layout() -> None:
    path = GOLDENS / "double_heads" / "layout_dh_faster_rcnn_r50_fpn_1x.json"
    config = V2_CONFIGS / "double_heads" / "dh_faster_rcnn_r50_fpn_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    expected = json.loads(path.read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]


def test_head_checks_and_init() -> None:
    with pytest.raises(ValueError, match="num_convs"):
        DoubleConvFCBBoxHead(num_convs=0, num_fcs=1, in_channels=4)
    with pytest.raises(ValueError, match="with_avg_pool"):
        DoubleConvFCBBoxHead(num_convs=1, num_fcs=1, in_channels=4, with_avg_pool=False)
    torch.manual_seed(0)
    head = DoubleConvFCBBoxHead(
        num_convs=1, num_fcs=1, in_channels=4, conv_out_channels=8, fc_out_channels=16
    )
    head.init_weights()
    assert float(head.fc_cls.weight.detach().std()) == pytest.approx(0.01, rel=0.2)
    assert float(head.fc_reg.weight.detach().std()) == pytest.approx(0.001, rel=0.2)
    bound = (6 / (4 * 49 + 16)) ** 0.5  # Xavier uniform
    assert float(head.fc_branch[0].weight.detach().abs().max()) <= bound
    assert float(head.fc_branch[0].weight.detach().abs().max()) > 0.9 * bound
    assert list(head.state_dict())[:4] == [
        "fc_cls.weight",
        "fc_cls.bias",
        "fc_reg.weight",
        "fc_reg.bias",
    ]
