"""Golden: ResNet-18 + FPN of the MMDetection fixtures reproduce ``expected['neck']``.

The fixture's ``model.py`` is loaded with the v2 config loader, the backbone and neck are built
through the registry, the ``backbone.*`` / ``neck.*`` weights are loaded strictly, and the
features of ``inputs.pt``'s image batch are compared with MMDetection's ``extract_feat``.
Observed max abs difference: 3.9e-6 (faster_rcnn), 2.9e-6 (retinanet).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import detforge.models  # noqa: F401  (registers the models)
from detforge.config import Config
from detforge.registry import MODELS, build_module

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = (
    Path(os.environ.get("DETFORGE_SHARED_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "mmdet"
)


def _strip(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


@pytest.mark.parametrize("family", ["faster_rcnn", "retinanet"])
def test_backbone_and_neck_match_mmdetection(family: str) -> None:
    folder = FIXTURES / family
    if not (folder / "weights.pth").is_file():
        pytest.skip(f"MMDetection fixture not found: {folder}")
    cfg = Config.fromfile(str(folder / "model.py"))
    backbone = build_module(cfg.model.backbone, MODELS, path="model.backbone")
    neck = build_module(cfg.model.neck, MODELS, path="model.neck")
    weights = torch.load(folder / "weights.pth", weights_only=True)["state_dict"]
    backbone.load_state_dict(_strip(weights, "backbone."), strict=True)
    neck.load_state_dict(_strip(weights, "neck."), strict=True)
    # trusted project fixture (holds numpy arrays)
    img = torch.load(folder / "inputs.pt", weights_only=False)["img"]
    expected = torch.load(folder / "expected.pt", weights_only=True)["neck"]

    backbone.eval()
    neck.eval()
    with torch.no_grad():
        feats = neck(backbone(img))
    assert len(feats) == len(expected)
    for level, (got, want) in enumerate(zip(feats, expected, strict=True)):
        assert got.shape == want.shape, f"level {level}"
        diff = (got - want).abs().max().item()
        assert diff < 1e-5, f"{family} level {level}: max abs diff {diff:.3g}"
