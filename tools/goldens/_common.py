"""Helpers of the golden-fixture scripts in this folder (run with the PEER venv: MMDetection 3.3).

Every script builds a small instance of one component in MMDetection, fills it with seeded random
weights (and random batch-norm statistics, so eval-mode BN is not the identity), runs one small
input through it, and writes under ``tests/data/goldens/<name>/``:

- ``weights.pt``: ``{instance: state_dict}`` (float32),
- ``input.pt``: ``{instance: Tensor[1, 3, H, W]}``,
- ``expected.pt``: ``{instance: [feature maps]}``,
- ``layout.json`` (gzipped when large): the full-size component's ``state_dict`` keys and shapes,
  its parameter count and the config it was built from.

Usage (from the repository root): ``/work/peers/venv/bin/python tools/goldens/<name>.py``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from torch import nn

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "data" / "goldens"


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def randomize(module: nn.Module, seed: int) -> None:
    """Seeded random weights: convs/linears ~ N(0, 1/fan_in), norm affines around 1/0, BN
    running statistics random (mean ~ N(0, 0.1), var ~ U(0.5, 1.5))."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if tensor.dim() > 1:
                fan_in = math.prod(tensor.shape[1:])
                tensor.copy_(torch.randn(tensor.shape, generator=gen) / math.sqrt(fan_in))
            elif leaf in ("weight", "running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            else:  # biases, running means
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))


def layout(module: nn.Module, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The full-size layout record: keys and shapes in order, parameter counts, the config."""
    import mmdet

    sd = module.state_dict()
    return {
        "config": config,
        "mmdet_version": mmdet.__version__,
        "num_params": sum(p.numel() for p in module.parameters()),
        "num_trainable_params": sum(p.numel() for p in module.parameters() if p.requires_grad),
        "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
        **extra,
    }


def write(name: str, weights: dict, inputs: dict, expected: dict, layout_record: dict) -> Path:
    out = GOLDENS / name
    out.mkdir(parents=True, exist_ok=True)
    torch.save(weights, out / "weights.pt")
    torch.save(inputs, out / "input.pt")
    torch.save(expected, out / "expected.pt")
    text = json.dumps(layout_record, separators=(",", ":")) + "\n"
    for stale in ("layout.json", "layout.json.gz"):
        (out / stale).unlink(missing_ok=True)
    if len(text) > 200_000:
        with gzip.GzipFile(out / "layout.json.gz", "wb", mtime=0) as f:  # reproducible bytes
            f.write(text.encode())
    else:
        (out / "layout.json").write_text(text)
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    print(name, sizes, f"total {sum(sizes.values()) / 1e6:.2f} MB")
    return out


def run(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    module.eval()
    with torch.no_grad():
        out = module(x)
    return [t.clone() for t in (out if isinstance(out, (list, tuple)) else [out])]


def instances(
    build: Any, configs: dict[str, dict], size: tuple[int, int] = (64, 64)
) -> tuple[dict, dict, dict]:
    """``(weights, inputs, expected)`` of ``build(cfg)`` for each named config: seeded random
    weights (seed 100 + i), a seeded ``Tensor[1, 3, *size]`` input (seed 200 + i), the eval-mode
    outputs under ``expected[name]['backbone']`` and the config under ``['config']``."""
    weights, inputs, expected = {}, {}, {}
    for i, (name, cfg) in enumerate(configs.items()):
        seed_all(i)
        model = build(dict(cfg))
        randomize(model, seed=100 + i)
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(200 + i))
        weights[name] = {k: v.clone() for k, v in model.state_dict().items()}
        inputs[name] = x
        expected[name] = {"backbone": run(model, x), "config": cfg}
    return weights, inputs, expected


def count_params(build: Any, meta: bool = True) -> tuple[int, int]:
    """``(num_params, num_state_dict_entries)`` of ``build()`` (constructed on the meta device
    unless ``meta`` is False)."""
    with torch.device("meta" if meta else "cpu"):
        module = build()
    return sum(p.numel() for p in module.parameters()), len(module.state_dict())
