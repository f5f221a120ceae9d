"""Shared code of the neck/layer golden generators (run with the PEER venv, from the repo root).

Each generator (``tools/goldens/<name>.py``) builds components in MMDetection 3.3.0 / mmcv
2.1.0 from v2-syntax config dicts and writes ``tests/data/goldens/<name>/``:

- ``layout*.json``  full size: ``config`` (the v2.28.2 config's dict), every state-dict key and
  shape in order, parameter counts, peer versions;
- ``small*.json``   the small instance's ``config`` and notes;
- ``weights*.pt``   its seeded random state_dict (:func:`randomise`);
- ``input*.pt``     a list of input tensors;
- ``expected*.pt``  a list of output tensors (nested outputs flattened in order).

Everything runs on one CPU thread with fixed seeds; weights and inputs are float32.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "data" / "goldens"


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def registry() -> Any:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    return MODELS


def build(cfg: dict[str, Any]) -> nn.Module:
    from mmengine.config import ConfigDict

    module: nn.Module = registry().build(ConfigDict(copy.deepcopy(cfg)))
    return module


def versions() -> dict[str, str]:
    import mmcv
    import mmdet
    import mmengine

    return {
        "mmdet": mmdet.__version__,
        "mmcv": mmcv.__version__,
        "mmengine": mmengine.__version__,
        "torch": torch.__version__,
    }


def randomise(module: nn.Module, seed: int) -> None:
    """Seeded random weights that keep activations O(1): conv/linear weights N(0, 1/fan_in),
    biases N(0, 0.1^2), norm weights 1 + N(0, 0.1^2), running means N(0, 0.1^2), running
    variances U(0.5, 1.5). Shared modules get one value (the last visit)."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape: Sequence[int], std: float) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=g) * std

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d | nn.Linear | nn.ConvTranspose2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(normal(m.weight.shape, fan_in**-0.5))
                if m.bias is not None:
                    m.bias.copy_(normal(m.bias.shape, 0.1))
            elif isinstance(m, nn.modules.batchnorm._NormBase | nn.GroupNorm):
                if m.weight is not None:
                    m.weight.copy_(1 + normal(m.weight.shape, 0.1))
                    m.bias.copy_(normal(m.bias.shape, 0.1))
                if getattr(m, "running_mean", None) is not None:
                    m.running_mean.copy_(normal(m.running_mean.shape, 0.1))
                    m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def flatten(outputs: Any) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs.detach().clone().contiguous()]
    return [t for item in outputs for t in flatten(item)]


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")


def dump_layout(
    name: str,
    cfg: dict[str, Any],
    file: str = "layout.json",
    drop: Sequence[str] = (),
) -> nn.Module:
    """Build the full-size ``cfg`` and write its layout to ``tests/data/goldens/<name>/file``.

    ``drop`` names v2 arguments MMDetection 3.3 no longer takes (left out of the peer build,
    kept in the stored config)."""
    module = build({k: v for k, v in cfg.items() if k not in drop})
    write_json(
        GOLDENS / name / file,
        {
            "config": cfg,
            "versions": versions(),
            "num_params": sum(p.numel() for p in module.parameters()),
            "num_trainable_params": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "state_dict": [[k, list(v.shape)] for k, v in module.state_dict().items()],
        },
    )
    print(name, file, len(module.state_dict()), "entries")
    return module


def save_case(
    name: str,
    cfg: dict[str, Any],
    inputs: Any,
    seed: int,
    case: str = "",
    notes: str = "",
    module: nn.Module | None = None,
    drop: Sequence[str] = (),
) -> list[torch.Tensor]:
    """Build the small ``cfg`` (or use ``module``), randomise it with ``seed``, run ``inputs``
    through it in eval mode, and save config, weights, inputs and outputs (``drop``: as in
    :func:`dump_layout`)."""
    suffix = f"_{case}" if case else ""
    folder = GOLDENS / name
    folder.mkdir(parents=True, exist_ok=True)
    if module is None:
        module = build({k: v for k, v in cfg.items() if k not in drop})
    randomise(module, seed)
    module.eval()
    with torch.no_grad():
        outs = flatten(module(inputs))
    write_json(
        folder / f"small{suffix}.json", {"config": cfg, "versions": versions(), "notes": notes}
    )
    torch.save(
        {k: v.clone() for k, v in module.state_dict().items()}, folder / f"weights{suffix}.pt"
    )
    torch.save(inputs, folder / f"input{suffix}.pt")
    torch.save(outs, folder / f"expected{suffix}.pt")
    print(name, case or "-", [tuple(o.shape) for o in outs])
    return outs


def feature_maps(
    channels: Sequence[int], sizes: Sequence[tuple[int, int]], seed: int
) -> list[torch.Tensor]:
    """One random ``[1, C, H, W]`` map per level."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn((1, c, h, w), generator=g) for c, (h, w) in zip(channels, sizes, strict=True)
    ]


sys.path.insert(0, str(Path(__file__).resolve().parent))
