"""Golden fixtures of the model-zoo components (tests/data/goldens/<name>/, made by
tools/goldens/<name>.py with MMDetection 3.3; each folder's README says how)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from detforge.models import build_detector
from detforge.registry import MODELS

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"


def golden_meta(name: str) -> dict[str, Any]:
    """The fixture's ``layout.json``: configs, notes and full-size layouts."""
    meta: dict[str, Any] = json.loads((GOLDENS / name / "layout.json").read_text())
    return meta


def run_golden(name: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Build ``detforge_cfg``, load the fixture's weights strictly, run its input in eval mode;
    returns ``(ours, expected)``."""
    folder = GOLDENS / name
    module = MODELS.build(golden_meta(name)["detforge_cfg"])
    module.load_state_dict(torch.load(folder / "weights.pt", weights_only=True), strict=True)
    inputs = torch.load(folder / "input.pt", weights_only=True)
    expected = torch.load(folder / "expected.pt", weights_only=True)
    module.eval()
    with torch.no_grad():
        outs = module(inputs)
    return list(outs), list(expected)


def assert_outputs_close(ours: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(ours) == len(expected)
    for level, (got, want) in enumerate(zip(ours, expected, strict=True)):
        assert got.shape == want.shape, f"output {level}"
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4, msg=f"output {level}")


def check_full_layout(entry: dict[str, Any]) -> None:
    """The detector built from the v2 config's model equals MMDetection 3.3's layout."""
    model = build_detector(entry["model"])
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == entry["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == entry["num_params"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == entry["num_trainable_params"]
