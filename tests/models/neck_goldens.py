"""Shared helpers of the component golden tests (``tests/data/goldens/<name>/``).

Each fixture folder holds ``layout.json`` (the full-size component's state_dict layout and the
config it was built from, dumped from MMDetection 3.3), and for the small instance(s)
``weights.pt`` / ``input.pt`` / ``expected.pt`` written by ``tools/goldens/<name>.py`` with the
peer stack; its README says how. Nothing here needs MMDetection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detforge.models.layers import PLUGIN_LAYERS
from detforge.registry import MODELS, build_module

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"
# the tolerance for feature maps (abs and rel)
ATOL = RTOL = 1e-4


def golden_dir(name: str) -> Path:
    return GOLDENS / name


def load(name: str, file: str) -> Any:
    """``torch.load`` of ``tests/data/goldens/<name>/<file>`` (tensors and plain containers)."""
    return torch.load(golden_dir(name) / file, weights_only=True)


def layout(name: str, file: str = "layout.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((golden_dir(name) / file).read_text())
    return data


def build(cfg: Mapping[str, Any]) -> nn.Module:
    # plugin layers (NonLocal2d) have their own registry, as in mmcv
    registry = PLUGIN_LAYERS if cfg.get("type") in PLUGIN_LAYERS else MODELS
    module: nn.Module = build_module(dict(cfg), registry, path=str(cfg.get("type")))
    return module


def assert_layout(module: nn.Module, expected: Mapping[str, Any]) -> None:
    """Keys (in order), shapes and parameter counts equal ``expected`` (a layout.json)."""
    got = [[k, list(v.shape)] for k, v in module.state_dict().items()]
    want = [list(item) for item in expected["state_dict"]]
    missing = sorted({k for k, _ in want} - {k for k, _ in got})
    extra = sorted({k for k, _ in got} - {k for k, _ in want})
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    assert got == want
    assert sum(p.numel() for p in module.parameters()) == expected["num_params"]
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert trainable == expected["num_trainable_params"]


def assert_outputs_close(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor]) -> float:
    """Every map within the issue's tolerance; returns the largest absolute difference."""
    assert len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    worst = 0.0
    for level, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"output {level}: {tuple(g.shape)} vs {tuple(w.shape)}"
        torch.testing.assert_close(g, w, atol=ATOL, rtol=RTOL, msg=f"output {level}")
        worst = max(worst, (g - w).abs().max().item())
    return worst


def run_golden(name: str, cfg_key: str = "config", case: str = "") -> float:
    """Build the small instance of fixture ``name`` (``case`` picks one of several), load the
    peer's weights strictly, run it in eval mode on the stored input and compare outputs."""
    suffix = f"_{case}" if case else ""
    meta = layout(name, f"small{suffix}.json")
    module = build(meta[cfg_key])
    module.load_state_dict(load(name, f"weights{suffix}.pt"), strict=True)
    module.eval()
    inputs = load(name, f"input{suffix}.pt")
    with torch.no_grad():
        outs = module(inputs)
    return assert_outputs_close(flatten(outs), load(name, f"expected{suffix}.pt"))


def flatten(outputs: Any) -> list[torch.Tensor]:
    """A tensor, or nested lists/tuples of them, as one list in order (as the peer saved them)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in flatten(item)]
