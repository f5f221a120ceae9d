"""Full-size ResNet-50 + FPN built from our v2 base configs has MMDetection's state-dict layout.

The layouts (``fixtures/mmdet/layouts/*_r50.json``) list every state-dict key and shape of the
standard MMDetection models, in ``state_dict()`` order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from torch import nn

import detforge.models  # noqa: F401  (registers the models)
from detforge.config import Config
from detforge.registry import MODELS, build_module

ROOT = Path(__file__).resolve().parents[3]
LAYOUTS = (
    Path(os.environ.get("DETFORGE_SHARED_FIXTURES", ROOT.parent / "shared" / "fixtures"))
    / "mmdet"
    / "layouts"
)


def _build(config: str) -> tuple[nn.Module, nn.Module]:
    cfg = Config.fromfile(str(ROOT / "configs" / "_base_" / "models" / config))
    backbone = dict(cfg.model.backbone)
    backbone["init_cfg"] = None  # no download
    return build_module(backbone, MODELS), build_module(cfg.model.neck, MODELS)


@pytest.mark.parametrize(
    ("family", "config"),
    [("faster_rcnn", "faster_rcnn_r50_fpn.py"), ("retinanet", "retinanet_r50_fpn.py")],
)
def test_layout_matches_mmdetection(family: str, config: str) -> None:
    path = LAYOUTS / f"{family}_r50.json"
    if not path.is_file():
        pytest.skip(f"layout fixture not found: {path}")
    layout = json.loads(path.read_text())
    expected = [(k, s) for k, s in layout["state_dict"] if k.startswith(("backbone.", "neck."))]
    backbone, neck = _build(config)
    ours = [(f"backbone.{k}", list(v.shape)) for k, v in backbone.state_dict().items()]
    ours += [(f"neck.{k}", list(v.shape)) for k, v in neck.state_dict().items()]
    assert len(ours) == len(expected)
    assert ours == expected
    # frozen_stages=1 freezes the stem and layer1: the only frozen parameters of the detector
    frozen = sum(p.numel() for p in backbone.parameters() if not p.requires_grad)
    assert frozen == layout["num_params"] - layout["num_trainable_params"]
    assert all(p.requires_grad for p in neck.parameters())
