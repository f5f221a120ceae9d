"""Tiny real detectors for inference tests: the golden fixtures' trained weights plus a test
pipeline (``Resize`` to fit 320×320, ``Normalize``, ``Pad`` to 32), written as a v2 config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detforge.config import Config
from tests.conftest import shared_data_dir
from tests.models.golden import v2_model_cfg

FIXTURES = shared_data_dir().parent / "fixtures" / "mmdet"
#: v2.28 configs of fixtures made in MMDetection 3.x's DETR layout (README.md there)
V2_MODELS = Path(__file__).resolve().parents[1] / "data" / "v2_models"

TEST_PIPELINE = """
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=(320, 320),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ]),
]
data = dict(test=dict(type='CocoDataset', ann_file=None, pipeline=test_pipeline))
"""


def fixture_root(family: str) -> Path:
    root = FIXTURES / family
    if not (root / "weights.pth").is_file():
        pytest.skip(f"golden fixture {root} not found")
    return root


def write_tiny_config(out_dir: Path, family: str = "gfl") -> tuple[Path, Path]:
    """``(config path, checkpoint path)`` of the fixture ``family`` with a test pipeline."""
    root = fixture_root(family)
    config = Path(out_dir) / f"tiny_{family}.py"
    v2_model = V2_MODELS / f"{family}.py"
    if not v2_model.is_file():
        model_py = Config.fromfile(root / "model.py")
        model_py.model = v2_model_cfg(model_py.model.to_dict())
        config.write_text(str(model_py.dump()) + TEST_PIPELINE)
        return config, root / "weights.pth"
    from detforge.models.transformers import convert_v3_detr_keys

    config.write_text(v2_model.read_text() + TEST_PIPELINE)
    checkpoint = torch.load(root / "weights.pth", weights_only=True)
    checkpoint["state_dict"] = convert_v3_detr_keys(checkpoint["state_dict"])
    weights = Path(out_dir) / f"tiny_{family}_v2.pth"
    torch.save(checkpoint, weights)
    return config, weights
