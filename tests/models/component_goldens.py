"""Access to the component golden fixtures in ``tests/data/goldens/<name>/``.

Each folder was written by ``tools/goldens/<name>.py`` with MMDetection 3.3 (its README says how):
``weights.pt`` / ``input.pt`` / ``expected.pt`` hold ``{instance: ...}`` for small instances, and
``layout.json`` (or ``layout.json.gz``) the full-size component's state-dict layout.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"
# the tolerance of the issue: same weights, same input => same feature maps within 1e-4
TOL = {"atol": 1e-4, "rtol": 1e-4}


@functools.cache
def load_golden(name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(weights, inputs, expected)`` of fixture ``name``, each ``{instance: ...}`` (loaded once:
    do not modify them)."""
    folder = GOLDENS / name
    return tuple(  # type: ignore[return-value]
        torch.load(folder / f"{part}.pt", weights_only=True)
        for part in ("weights", "input", "expected")
    )


@functools.cache
def load_layout(name: str) -> dict[str, Any]:
    """The full-size layout record of fixture ``name`` (``layout.json`` or ``.json.gz``)."""
    folder = GOLDENS / name
    if (folder / "layout.json.gz").is_file():
        with gzip.open(folder / "layout.json.gz", "rt") as f:
            return json.load(f)
    return json.loads((folder / "layout.json").read_text())


def assert_layout(module: nn.Module, record: dict[str, Any]) -> None:
    """Keys, order, shapes and parameter counts of ``module`` equal MMDetection's."""
    got = [[k, list(v.shape)] for k, v in module.state_dict().items()]
    want = record["state_dict"]
    missing = sorted({k for k, _ in want} - {k for k, _ in got})
    extra = sorted({k for k, _ in got} - {k for k, _ in want})
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    assert got == want
    assert sum(p.numel() for p in module.parameters()) == record["num_params"]
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert trainable == record["num_trainable_params"]


def assert_features(got: Any, want: list[torch.Tensor]) -> None:
    """``got`` (a tensor list/tuple) matches MMDetection's maps within :data:`TOL`."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"output {i}: {tuple(g.shape)} != {tuple(w.shape)}"
        torch.testing.assert_close(g, w, **TOL, msg=lambda m, i=i: f"output {i}: {m}")
