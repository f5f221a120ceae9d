"""Reading the golden fixtures under ``tests/data/goldens/`` (made by ``tools/goldens/*.py`` on
the MMDetection 3.3 / mmcv 2.1 peer stack) and comparing with them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detforge.config import Config
from detforge.config.compat import normalize_config
from detforge.models import build_detector
from detforge.registry import MODELS, build_module

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "goldens"
#: the tolerance of the golden comparisons (abs and rel), as the issue asks
TOL = 1e-4


def load(name: str, file: str) -> Any:
    """A ``.pt`` (tensors/dicts only) or ``.json`` file of fixture ``name``."""
    path = GOLDENS / name / file
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return torch.load(path, weights_only=True)


def as_float32(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict stored with float16 values (tools/goldens ``half_state_dict``) as float32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """``got`` equals ``want`` within :data:`TOL` (abs and rel), with the worst error shown."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    diff = (got.double() - want.double()).abs().max().item() if got.numel() else 0.0
    torch.testing.assert_close(got, want, atol=TOL, rtol=TOL, msg=f"{what}: max abs diff {diff}")


def assert_all_close(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_close(g, w, f"{what}[{i}]")


def assert_layout(module: nn.Module, name: str, file: str, prefixes: tuple[str, ...] = ()) -> None:
    """``module``'s state_dict keys, their order and shapes, and its parameter counts equal the
    full-size MMDetection layout ``file`` (only the keys under ``prefixes`` if given)."""
    expected = load(name, file)
    got = [
        [k, list(v.shape)]
        for k, v in module.state_dict().items()
        if not prefixes or k.startswith(prefixes)
    ]
    want = expected["state_dict"]
    missing = sorted({k for k, _ in want} - {k for k, _ in got})
    extra = sorted({k for k, _ in got} - {k for k, _ in want})
    assert not missing and not extra, f"{file}: missing {missing[:10]}, unexpected {extra[:10]}"
    assert got == want, f"{file}: same keys, but shapes or order differ"
    params = [p for n, p in module.named_parameters() if not prefixes or n.startswith(prefixes)]
    assert sum(p.numel() for p in params) == expected["num_params"]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    assert trainable == expected["num_trainable_params"]


def build_v2_model(name: str, file: str) -> nn.Module:
    """The model of layout ``file``: the merged v2.28.2 ``model`` dict stored in it, through
    the v2 dialect normaliser, built whole (or only the parts named by its ``prefixes``, as a
    ``ModuleDict``, for detectors detforge does not build yet)."""
    expected = load(name, file)
    model = normalize_config(Config(dict(model=expected["model"])))[0].model
    prefixes = [p.rstrip(".") for p in expected.get("prefixes", [])]
    if not prefixes:
        built: nn.Module = build_detector(model)
        return built
    return nn.ModuleDict({p: build_module(model[p], MODELS, path=f"model.{p}") for p in prefixes})
