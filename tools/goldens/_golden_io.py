"""Shared by the golden generators in this folder (run with the peer stack's Python).

Each generator builds a component in MMDetection 3.3 (mmcv 2.1), gives it seeded random weights,
runs one small input through it and writes, under ``tests/data/goldens/<name>/``:
``weights.pt`` (the state_dict), ``input.pt``, ``expected.pt`` (the outputs) and ``layout.json``
(the configs used and the full-size state_dict layouts). detforge's tests read only those files.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]


def setup(seed: int = 0) -> None:
    """One thread, seeded everything, MMDetection's registries populated."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    from mmdet.utils import register_all_modules

    register_all_modules()


def randomize(module: nn.Module, seed: int) -> None:
    """Seeded weights that keep activations O(1): N(0, 1/fan_in) for matrices and kernels,
    1 + N(0, 0.1) for 1-d weights (norm scales), N(0, 0.1) for biases and other tensors."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.dim() >= 2 and "bias_table" not in name and "pos_embed" not in name:
                fan_in = param[0].numel()
                param.copy_(noise / fan_in**0.5)
            elif param.dim() == 1 and name.endswith("weight"):
                param.copy_(1 + 0.1 * noise)
            else:
                param.copy_(0.1 * noise)


def layout(module: nn.Module) -> dict[str, Any]:
    """``{'state_dict': [[key, shape], ...], 'num_params': n}`` in state_dict order."""
    return {
        "state_dict": [[k, list(v.shape)] for k, v in module.state_dict().items()],
        "num_params": sum(p.numel() for p in module.parameters()),
    }


def versions() -> dict[str, str]:
    import mmcv
    import mmdet
    import mmengine

    found = {
        "torch": torch.__version__,
        "mmcv": mmcv.__version__,
        "mmdet": mmdet.__version__,
        "mmengine": mmengine.__version__,
    }
    for extra in ("mmpretrain", "timm"):  # the ones the generator used
        if extra in sys.modules:
            found[extra] = sys.modules[extra].__version__
    return found


def write(
    name: str, weights: dict[str, torch.Tensor], inputs: Any, expected: Any, meta: dict[str, Any]
) -> Path:
    """Write the fixture files of ``name``; returns the folder."""
    folder = ROOT / "tests" / "data" / "goldens" / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in weights.items()}, folder / "weights.pt")
    torch.save(inputs, folder / "input.pt")
    torch.save(expected, folder / "expected.pt")
    meta = dict(meta, versions=versions())
    (folder / "layout.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{folder}: {total / 1e6:.2f} MB")
    return folder


def v2_config_root() -> Path:
    """MMDetection v2.28.2's ``configs`` folder: ``$V2_CONFIGS`` or ``../mmdet_v2/configs``."""
    return Path(os.environ.get("V2_CONFIGS", ROOT.parent / "mmdet_v2" / "configs"))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def full_layouts(
    pairs: dict[str, tuple[str, str]], prepare: Callable[[Any], None] | None = None
) -> dict[str, Any]:
    """For each ``name: (v2 config, MMDetection 3.3 config)``: the v2 config's ``model`` dict
    (what detforge builds) and the layout of the model MMDetection 3.3 builds from its config
    (after ``prepare(model_cfg)``, e.g. to stop a download).
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config

    v3_root = Path(__import__("mmdet").__file__).parent / ".mim" / "configs"
    out = {}
    for name, (v2_rel, v3_rel) in pairs.items():
        v2_model = Config.fromfile(
            str(v2_config_root() / v2_rel), import_custom_modules=False
        ).model
        v3_model = Config.fromfile(str(v3_root / v3_rel)).model
        if prepare is not None:
            prepare(v3_model)
        model = MODELS.build(v3_model)
        found = layout(model)
        found["num_trainable_params"] = sum(
            p.numel() for p in model.parameters() if p.requires_grad
        )
        out[name] = {
            "v2_config": v2_rel,
            "mmdet3_config": v3_rel,
            "model": _plain(v2_model.to_dict()),
            **found,
        }
        print(f"{name}: {len(found['state_dict'])} tensors, {found['num_params']} parameters")
    return out


def run_small(
    name: str,
    peer_cfg: dict[str, Any],
    detforge_cfg: dict[str, Any],
    inputs: Any,
    layouts: dict[str, Any],
    notes: str = "",
    seed: int = 1,
    adjust: Callable[[nn.Module], None] | None = None,
) -> None:
    """Build ``peer_cfg`` in MMDetection 3.3, randomise it, run ``inputs`` (a tensor or a list
    of tensors) in eval mode and write the fixture, with ``detforge_cfg`` for the test.
    ``adjust`` changes the built module first (where MMDetection 3.3 differs from v2)."""
    from mmdet.registry import MODELS

    module = MODELS.build(peer_cfg)
    if adjust is not None:
        adjust(module)
    randomize(module, seed)
    module.eval()
    with torch.no_grad():
        outs = module(inputs)
    expected = [o.contiguous() for o in outs]
    meta = {
        "detforge_cfg": detforge_cfg,
        "peer_cfg": _plain(peer_cfg),
        "notes": notes,
        "layouts": layouts,
    }
    write(name, module.state_dict(), inputs, expected, meta)
