"""Shared helpers of the golden-fixture scripts that run on the peer stack (MMDetection 3.3.0 +
mmcv 2.1.0, ``/work/peers/venv/bin/python``). Never imported by detforge or its tests.

Every script pins one CPU thread, seeds everything, builds the MMDetection (or mmcv) component,
gives it random weights, runs it on a fixed input and writes ``weights.pt``, ``input.pt``,
``expected.pt`` (and ``layout*.json``: full-size state_dict keys and shapes) under
``tests/data/goldens/<name>/``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "data" / "goldens"
#: MMDetection v2.28.2's configs (the ones users bring); built with MMDetection 3.3's registry.
V2_CONFIGS = Path(os.environ.get("MMDET_V2_CONFIGS", "/work/mmdet_v2/configs"))
#: mmcv's source tree (for the CUDA-only kernels compiled on the CPU, see deform_roi_pool.py)
MMCV_SRC = Path(os.environ.get("MMCV_SRC", "/work/peers/src/mmcv-2.1.0"))


def out_dir(name: str) -> Path:
    path = GOLDENS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    info = {"torch": torch.__version__, "python": sys.version.split()[0]}
    for mod in ("mmcv", "mmdet", "mmengine"):
        with contextlib.suppress(ImportError):  # a package not installed is left out
            info[mod] = __import__(mod).__version__
    return info


def layout(module: torch.nn.Module, prefixes: tuple[str, ...] = ()) -> dict[str, object]:
    """``{state_dict: [[key, shape], ...], num_params, num_trainable_params}`` (optionally
    only the keys under ``prefixes``)."""
    items = [
        [k, list(v.shape)]
        for k, v in module.state_dict().items()
        if not prefixes or k.startswith(prefixes)
    ]
    params = [p for n, p in module.named_parameters() if not prefixes or n.startswith(prefixes)]
    return {
        "versions": versions(),
        "num_params": sum(p.numel() for p in params),
        "num_trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "state_dict": items,
    }


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Deterministic random weights where every tensor matters: conv/linear weights ~
    U(+-1/sqrt(fan_in)), biases and other vectors ~ N(0, 0.1), norm weights and running
    variances ~ U(0.5, 1.5), AWS ``weight_gamma`` ~ U(0.5, 1.5) / sqrt(fan_in), running means ~
    N(0, 0.1)."""

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if not t.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            owner = module.get_submodule(parent) if parent else module
            is_norm = isinstance(
                owner,
                torch.nn.modules.batchnorm._NormBase | torch.nn.GroupNorm | torch.nn.LayerNorm,
            )
            if leaf == "weight_gamma":
                # ConvAWS: positive (it recomputes gamma on loading when the mean is not), and
                # scaled like a fan-in init so that deep random stacks stay finite
                fan_in = math.prod(owner.weight.shape[1:])
                t.copy_((torch.rand(t.shape, generator=gen) + 0.5) / math.sqrt(fan_in))
            elif leaf == "running_var" or (is_norm and leaf == "weight"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() >= 2:
                fan_in = math.prod(t.shape[1:])
                bound = 1 / math.sqrt(fan_in)
                t.copy_((torch.rand(t.shape, generator=gen) * 2 - 1) * bound)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)


def halve(module: torch.nn.Module) -> None:
    """Round every floating tensor to float16 values (kept as float32), so that a fixture can
    store the weights as float16 without changing the results computed from them."""
    with torch.no_grad():
        for t in module.state_dict(keep_vars=True).values():
            if t.is_floating_point():
                t.copy_(t.half().float())


def half_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state_dict with floating tensors stored as float16 (see :func:`halve`)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in module.state_dict().items()}


def v2_model_cfg(rel: str):
    """``cfg.model`` of the v2.28.2 config ``rel`` (under ``configs/``), read by mmengine."""
    from mmengine.config import Config

    return Config.fromfile(str(V2_CONFIGS / rel)).model


def v2_layout(rel: str, prefixes: tuple[str, ...] = ()) -> dict[str, object]:
    """The full-size layout of v2 config ``rel`` built by MMDetection 3.3, with the merged v2
    ``model`` dict itself (so that the detforge test builds exactly that model)."""
    model_cfg = v2_model_cfg(rel)
    return {
        "config": rel,
        "model": model_cfg.to_dict(),
        "prefixes": list(prefixes),
        **layout(build(model_cfg.copy()), prefixes),
    }


def build(cfg):
    """Build an MMDetection 3.3 module from a config dict (registers mmdet's modules)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    return MODELS.build(cfg)


def init_single_process_group() -> None:
    """A one-process gloo group, so that mmcv's ``MMSyncBN`` can be built on the CPU."""
    import torch.distributed as dist

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        dist.init_process_group("gloo", rank=0, world_size=1)


def write_layouts(out: Path, configs: list[tuple[str, tuple[str, ...]]]) -> None:
    """``layout_<config name>.json`` (see :func:`v2_layout`) for each ``(config, prefixes)``."""
    for rel, prefixes in configs:
        name = Path(rel).stem.removesuffix("_coco")
        write_json(out / f"layout_{name}.json", v2_layout(rel, prefixes))


def backbone_golden(out: Path, cfg: dict, seed: int, size: int = 64) -> None:
    """``backbone_*`` files: MMDetection's backbone ``cfg`` with :func:`randomize` d float16
    values (stored as float16), eval mode, on one ``size`` x ``size`` image."""
    torch.manual_seed(0)
    backbone = build(dict(cfg))
    backbone.eval()  # (MMDetection's ResNet.train returns None: no chaining)
    randomize(backbone, seed=seed)
    halve(backbone)
    img = torch.randn(1, 3, size, size)
    with torch.no_grad():
        feats = backbone(img)
    torch.save(half_state_dict(backbone), out / "backbone_weights.pt")
    torch.save({"img": img}, out / "backbone_input.pt")
    torch.save({"feats": list(feats)}, out / "backbone_expected.pt")
    write_json(out / "backbone.json", cfg)
