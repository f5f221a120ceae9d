"""Helpers of the component golden tests: ``tests/data/goldens/<name>/`` (see
``tools/goldens/common.py`` for how MMDetection 3.3 made them) and full-size layouts."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import detforge.models  # noqa: F401  (registers the models)
from detforge.registry import MODELS, build_module
from tools.goldens.weights import formula_state_dict

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"
_NON_PARAMS = ("running_mean", "running_var", "num_batches_tracked")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file, or its ``.gz`` twin."""
    if not path.is_file():
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "rt") as f:
            data: dict[str, Any] = json.load(f)
        return data
    data = json.loads(path.read_text())
    return data


def build_part(cfg: Mapping[str, Any], part: str) -> nn.Module:
    """A backbone/neck built from a v2-syntax dict through the registry, weights untouched."""
    cfg = dict(cfg)
    if (
        part == "backbone"
        and cfg.get("init_cfg", {})
        and cfg["init_cfg"].get("type") == "Pretrained"
    ):
        cfg["init_cfg"] = None  # nothing is downloaded
    return build_module(cfg, MODELS, path=f"model.{part}")


def strip(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def run_golden(name: str) -> tuple[dict[str, list[torch.Tensor]], dict[str, list[torch.Tensor]]]:
    """Build the golden's parts, load its weights strictly, run its input.

    Returns ``(ours, expected)``: per part (``backbone``, ``neck``) the list of output maps.
    """
    folder = GOLDENS / name
    meta = read_json(folder / "golden.json")
    if meta["weights"] == "formula":
        state = formula_state_dict(meta["layout"])
    else:
        state = torch.load(folder / meta["weights"], weights_only=True)
    parts = {part: build_part(cfg, part) for part, cfg in meta["parts"].items()}
    for part, module in parts.items():
        module.load_state_dict(strip(state, f"{part}."), strict=True)
        module.eval()
    x = torch.load(folder / "input.pt", weights_only=True)
    ours: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        feats: Any = parts["backbone"](x) if "backbone" in parts else [x]
        if "backbone" in parts:
            ours["backbone"] = [feats] if isinstance(feats, torch.Tensor) else list(feats)
        if "neck" in parts:
            ours["neck"] = list(parts["neck"](feats))
    return ours, torch.load(folder / "expected.pt", weights_only=True)


def assert_maps_close(
    got: Sequence[torch.Tensor], want: Sequence[torch.Tensor], what: str, tol: float = 1e-4
) -> None:
    """Same number of maps, same shapes, values within ``tol`` (absolute and relative)."""
    assert len(got) == len(want), f"{what}: {len(got)} maps, expected {len(want)}"
    for level, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"{what} level {level}: {tuple(g.shape)} vs {tuple(w.shape)}"
        where = f"{what} level {level}"
        torch.testing.assert_close(g, w, atol=tol, rtol=tol, msg=lambda m, at=where: f"{at}: {m}")


def assert_layout(parts: Mapping[str, nn.Module], layout: Mapping[str, Any]) -> None:
    """Our parts' state-dict keys and shapes, in order, are the layout's entries with the same
    prefixes; the parameter counts agree."""
    prefixes = tuple(f"{part}." for part in parts)
    want = [(k, list(s)) for k, s in layout["state_dict"] if k.startswith(prefixes)]
    got = [
        (f"{part}.{k}", list(v.shape))
        for part, m in parts.items()
        for k, v in m.state_dict().items()
    ]
    missing = sorted({k for k, _ in want} - {k for k, _ in got})
    extra = sorted({k for k, _ in got} - {k for k, _ in want})
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    assert got == want
    n_want = sum(torch.Size(s).numel() for k, s in want if not k.endswith(_NON_PARAMS))
    assert sum(p.numel() for m in parts.values() for p in m.parameters()) == n_want


def build_layout_parts(layout: Mapping[str, Any]) -> dict[str, nn.Module]:
    """The full-size parts of a layout's v2 config (``v2_parts``), built on the meta device."""
    with torch.device("meta"):
        return {part: build_part(cfg, part) for part, cfg in layout["v2_parts"].items()}


def check_golden(name: str) -> None:
    """Every part of golden ``name`` reproduces MMDetection's maps within 1e-4."""
    ours, expected = run_golden(name)
    assert sorted(ours) == sorted(expected)
    for part, maps in expected.items():
        assert_maps_close(ours[part], maps, f"{name} {part}")


def check_layout(name: str, file_name: str) -> dict[str, Any]:
    """The v2 config's full-size parts have the layout's keys, shapes and parameter count."""
    layout = read_json(GOLDENS / name / file_name)
    assert_layout(build_layout_parts(layout), layout)
    return layout
