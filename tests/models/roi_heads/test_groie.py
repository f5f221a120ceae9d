"""GRoIE (GenericRoIExtractor) against MMDetection 3.3 (tests/data/goldens/groie), its
full-size layout, and the aggregation by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from detforge.config import load_config
from detforge.models import build_detector
from detforge.models.roi_heads import GenericRoIExtractor, SingleRoIExtractor
from tests.models.roi_goldens import (
    GOLDENS,
    check_detections,
    check_losses_and_grads,
    check_proposals,
    load_golden,
    metas,
)

V2_CONFIGS = GOLDENS.parents[2].parent / "mmdet_v2" / "configs"
ROI_LAYER = dict(type="RoIAlign", output_size=2, sampling_ratio=2)


def test_golden(one_thread: Any) -> None:
    model, inputs, expected = load_golden("groie")
    extractor = model.roi_head.bbox_roi_extractor
    assert isinstance(extractor, GenericRoIExtractor)
    assert type(extractor.post_module).__name__ == "GeneralizedAttention"
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs["img"])
        check_proposals(model.rpn_head.simple_test_rpn(feats, metas(inputs)), expected["proposals"])
    check_detections(model, inputs, expected)
    check_losses_and_grads(model, inputs, expected)


def _feats() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(1, 3, 32 // s, 32 // s, generator=gen) for s in (1, 2)]


def test_sum_and_concat_pool_every_level() -> None:
    feats = _feats()
    rois = torch.tensor([[0, 2.0, 2.0, 10.0, 12.0], [0, 0.0, 0.0, 31.0, 31.0]])
    summed = GenericRoIExtractor(roi_layer=ROI_LAYER, out_channels=3, featmap_strides=[1, 2])
    per_level = [layer(f, rois) for layer, f in zip(summed.roi_layers, feats, strict=True)]
    assert torch.allclose(summed(feats, rois), per_level[0] + per_level[1])
    concat = GenericRoIExtractor(
        aggregation="concat", roi_layer=ROI_LAYER, out_channels=6, featmap_strides=[1, 2]
    )
    assert torch.allclose(concat(feats, rois), torch.cat(per_level, 1))
    # SingleRoIExtractor pools each RoI from one level only
    single = SingleRoIExtractor(roi_layer=ROI_LAYER, out_channels=3, featmap_strides=[1, 2])
    assert not torch.allclose(single(feats, rois), summed(feats, rois))
    assert summed(feats, rois[:0]).shape == (0, 3, 2, 2)
    bad = GenericRoIExtractor(
        aggregation="concat", roi_layer=ROI_LAYER, out_channels=5, featmap_strides=[1, 2]
    )
    with pytest.raises(ValueError, match="6 channels together, out_channels is 5"):
        bad(feats, rois)


def test_pre_module_runs_on_each_level_and_post_module_on_the_sum() -> None:
    feats = _feats()
    rois = torch.tensor([[0, 2.0, 2.0, 10.0, 12.0]])
    ext = GenericRoIExtractor(
        roi_layer=ROI_LAYER,
        out_channels=3,
        featmap_strides=[1, 2],
        pre_cfg=dict(type="ConvModule", in_channels=3, out_channels=3, kernel_size=1),
        post_cfg=dict(
            type="ConvModule", in_channels=3, out_channels=3, kernel_size=1, act_cfg=None
        ),
    )
    assert list(dict(ext.named_children())) == ["roi_layers", "post_module", "pre_module"]
    assert ext.pre_module is not None and ext.post_module is not None
    levels = [
        ext.pre_module(layer(f, rois)) for layer, f in zip(ext.roi_layers, feats, strict=True)
    ]
    assert torch.allclose(ext(feats, rois), ext.post_module(levels[0] + levels[1]))
    with pytest.raises(ValueError, match="'sum' or 'concat'"):
        GenericRoIExtractor(
            aggregation="max", roi_layer=ROI_LAYER, out_channels=3, featmap_strides=[1]
        )


def test_full_size_layout() -> None:
    config = V2_CONFIGS / "groie" / "faster_rcnn_r50_fpn_groie_1x_coco.py"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    path = GOLDENS / "groie" / "layout_faster_rcnn_r50_fpn_groie_1x.json"
    expected = json.loads(path.read_text())
    model = build_detector(load_config(config, environ={}).cfg.model)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["num_params"]
