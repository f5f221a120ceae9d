"""Shared code of the golden-fixture generators in tools/goldens (run with the PEER venv).

Each ``tools/goldens/<name>.py`` builds a SMALL instance of a component in MMDetection 3.3.0
(mmcv 2.1.0), fills it with seeded random weights (or, for fixed-width backbones, the formula
weights of ``weights.py``), runs one small input through it in eval mode and writes
``tests/data/goldens/<name>/``:

- ``golden.json``  the parts in MMDetection v2 config syntax, the weights' source, the peer
  versions and the state-dict layout of the small instance;
- ``weights.pt``   ``{'backbone.<key>': tensor, 'neck.<key>': tensor}`` (random weights only);
- ``input.pt``     the input tensor;
- ``expected.pt``  ``{'backbone': [maps], 'neck': [maps]}``;
- ``layout_<config>.json``  full-size layouts: every state-dict key and shape of the standard
  MMDetection model, plus the v2.28.2 config's backbone/neck dicts (``v2_parts``).

usage (from the repository root): ``/work/peers/venv/bin/python tools/goldens/<name>.py``
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "data" / "goldens"
V2_CONFIGS = Path(os.environ.get("MMDET_V2_CONFIGS", ROOT.parent / "mmdet_v2" / "configs"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from weights import formula_state_dict  # noqa: E402


def _registry() -> Any:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    return MODELS


def peer_versions() -> dict[str, str]:
    import mmcv
    import mmdet
    import mmengine

    return {
        "mmdet": mmdet.__version__,
        "mmcv": mmcv.__version__,
        "mmengine": mmengine.__version__,
        "torch": torch.__version__,
    }


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def layout_of(module: torch.nn.Module, prefix: str = "") -> list[list[Any]]:
    return [[prefix + k, list(v.shape)] for k, v in module.state_dict().items()]


def random_state_dict(layout: list[list[Any]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights: He-scaled convs, norm weights near 1, sane running statistics."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(("running_mean", "bias")):
            out[key] = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:
            out[key] = 0.75 + 0.5 * torch.rand(shape, generator=gen)
        else:
            fan_in = math.prod(shape[1:])
            out[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
    return out


def _to_list(feats: Any) -> list[torch.Tensor]:
    return [feats] if isinstance(feats, torch.Tensor) else list(feats)


def make_golden(
    name: str,
    parts: dict[str, dict[str, Any]],
    input_shape: tuple[int, ...],
    weights: str = "random",
    peer_parts: dict[str, dict[str, Any]] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Build ``parts`` (v2 syntax; ``peer_parts`` where MMDetection 3.3 spells them
    differently), run ``input`` through backbone then neck, write the fixture files."""
    seed_everything(0)
    registry = _registry()
    built = {
        part: registry.build(copy.deepcopy((peer_parts or parts).get(part, cfg)))
        for part, cfg in parts.items()
    }
    layout = [row for part, m in built.items() for row in layout_of(m, f"{part}.")]
    if weights == "random":
        state = random_state_dict(layout, seed=0)
    elif weights == "formula":
        state = formula_state_dict(layout)
    else:
        raise ValueError(weights)
    for part, module in built.items():
        sub = {k[len(part) + 1 :]: v for k, v in state.items() if k.startswith(part + ".")}
        module.load_state_dict(sub, strict=True)
        module.eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(input_shape, generator=gen) * 2 - 1
    expected: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        feats = built["backbone"](x) if "backbone" in built else [x]
        if "backbone" in built:
            expected["backbone"] = _to_list(feats)
        if "neck" in built:
            expected["neck"] = _to_list(built["neck"](feats))
    out = GOLDENS / name
    out.mkdir(parents=True, exist_ok=True)
    torch.save(x, out / "input.pt")
    torch.save(expected, out / "expected.pt")
    if weights == "random":
        torch.save(state, out / "weights.pt")
    meta = {
        "parts": parts,
        "input_shape": list(input_shape),
        "weights": "weights.pt" if weights == "random" else "formula",
        "peer": peer_versions(),
        "notes": f"\n{notes}\n" if notes else "",
        "outputs": {
            part: [{"shape": list(t.shape), "max_abs": float(t.abs().max())} for t in maps]
            for part, maps in expected.items()
        },
        "layout": layout,
    }
    (out / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(name, {p: [tuple(t.shape) for t in m] for p, m in expected.items()})
    return meta


def v2_parts(v2_config: str) -> dict[str, Any]:
    """The backbone and neck dicts of a v2.28.2 config (``_base_`` merged by mmengine)."""
    from mmengine.config import Config

    model = Config.fromfile(str(V2_CONFIGS / v2_config)).model.to_dict()
    return {part: model[part] for part in ("backbone", "neck") if model.get(part)}


def dump_layout(
    name: str, file_name: str, v3_config: str, v2_config: str, tweak: Any = None
) -> dict[str, Any]:
    """Write the full-size standard model's layout (MMDetection 3.3 config ``v3_config``)."""
    import mmdet
    from mmengine.config import Config

    cfg_dir = Path(mmdet.__file__).parent / ".mim" / "configs"
    model_cfg = Config.fromfile(str(cfg_dir / v3_config)).model
    model_cfg.pop("data_preprocessor", None)
    if model_cfg.get("backbone", {}).get("init_cfg") is not None:
        model_cfg.backbone.init_cfg = None  # nothing is downloaded
    if tweak is not None:
        tweak(model_cfg)
    model = _registry().build(model_cfg)
    sd = model.state_dict()
    data = {
        "config_name": Path(v3_config).stem,
        "config_path": "configs/" + v3_config,
        "mmdet_version": mmdet.__version__,
        "num_params": sum(p.numel() for p in model.parameters()),
        "num_trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "num_state_dict_entries": len(sd),
        "v2_config": "configs/" + v2_config,
        "v2_parts": v2_parts(v2_config),
        "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
    }
    data["file"] = file_name if len(json.dumps(data)) <= 200_000 else file_name + ".gz"
    out = GOLDENS / name
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":")) + "\n"
    if data["file"].endswith(".gz"):  # big layouts are stored compressed
        with gzip.open(out / (file_name + ".gz"), "wt") as f:
            f.write(text)
    else:
        (out / file_name).write_text(text)
    print(name, file_name, data["num_params"], len(sd), len(text))
    return data


def write_readme(
    name: str, title: str, meta: dict[str, Any], layouts: list[dict[str, Any]], differences: str
) -> None:
    """``tests/data/goldens/<name>/README.md``: how the fixture was made and what it holds."""
    peer = ", ".join(f"{k} {v}" for k, v in meta["peer"].items())
    weights = (
        "`weights.pt` (seeded random: He-scaled convs, norm weights in [0.75, 1.25], running "
        "variances in [0.5, 1.5])"
        if meta["weights"] == "weights.pt"
        else "not stored: `tools/goldens/weights.py:formula_state_dict` computes them from the "
        "layout in `golden.json` (the widths are fixed, so random weights would be tens of MB)"
    )
    parts = "\n".join(f"- {part}: `{cfg}`" for part, cfg in meta["parts"].items())
    outputs = "\n".join(
        f"- {part}: " + ", ".join(f"{tuple(o['shape'])} (max |x| {o['max_abs']:.3g})" for o in outs)
        for part, outs in meta["outputs"].items()
    )
    layout_lines = "\n".join(
        f"- `{d['file']}`: MMDetection {d['mmdet_version']} `{d['config_path']}` "
        f"({d['num_params']:,} parameters, {d['num_state_dict_entries']} state-dict entries); "
        f"detforge builds the backbone/neck of v2.28.2's `{d['v2_config']}` (`v2_parts`)"
        for d in layouts
    )
    text = f"""# {name}: {title}

Made by `tools/goldens/{name}.py` with the peer stack ({peer}), one CPU thread, seed 0:
`/work/peers/venv/bin/python tools/goldens/{name}.py` from the repository root. Tested by
`tests/models/*/test_{name}.py` (through `tests/models/component_golden.py`), which needs
no MMDetection.

## Small instance (`golden.json`, `input.pt`, `expected.pt`)

Parts, in MMDetection v2 syntax (built through detforge's registry):
{parts}

Input: `input.pt`, uniform in [-1, 1), shape {tuple(meta["input_shape"])}. Weights: {weights}.
MMDetection ran the parts in eval mode; `expected.pt` holds their outputs:
{outputs}
{meta["notes"]}
## Full-size layouts

{layout_lines}

## MMDetection 3.3 vs v2.28.2

{differences}
"""
    (GOLDENS / name / "README.md").write_text(text)
