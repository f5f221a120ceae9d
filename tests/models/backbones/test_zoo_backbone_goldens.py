"""Small ResNets with v2 plugins (ContextBlock, GeneralizedAttention, NonLocal2d) and with
ConvWS + GN, and DetectoRS_ResNet + RFP, reproduce MMDetection 3.3's outputs on the same random
weights (tests/data/goldens/{plugins,conv_ws,detectors}, tools/goldens/*.py)."""

from __future__ import annotations

import pytest
import torch

import detforge.models  # noqa: F401  (registers the models)
from detforge.registry import MODELS, build_module
from tests.models.v2_goldens import as_float32, assert_all_close, load


@pytest.mark.parametrize("fixture", ["plugins", "conv_ws"])
def test_resnet_backbone_matches_mmdetection(fixture: str) -> None:
    backbone = build_module(load(fixture, "backbone.json"), MODELS).eval()
    backbone.load_state_dict(as_float32(load(fixture, "backbone_weights.pt")), strict=True)
    with torch.no_grad():
        feats = backbone(load(fixture, "backbone_input.pt")["img"])
    assert_all_close(feats, load(fixture, "backbone_expected.pt")["feats"], fixture)


def test_detectors_backbone_and_rfp_match_mmdetection() -> None:
    cfg, weights = load("detectors", "model.json"), load("detectors", "weights.pt")
    # training mode with norm_eval=False, as the fixture: batch statistics
    backbone = build_module(cfg["backbone"], MODELS).train()
    neck = build_module(cfg["neck"], MODELS).train()
    for module, key in ((backbone, "backbone"), (neck, "neck")):
        module.load_state_dict(as_float32(weights[key]), strict=True)
    expected = load("detectors", "expected.pt")
    with torch.no_grad():
        feats = backbone(load("detectors", "input.pt")["img"])
        pyramid = neck(feats)
    assert_all_close(feats, expected["backbone"], "backbone")
    assert_all_close(pyramid, expected["neck"], "neck")
