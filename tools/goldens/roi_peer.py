"""Shared helpers of the two-stage golden scripts (double_heads, dynamic_rcnn, ...) that run on
the peer stack (MMDetection 3.3.0 + mmcv 2.1.0, ``/work/peers/venv/bin/python``). Never
imported by detforge or its tests.

Every golden starts from the shared Faster R-CNN fixture (``shared/fixtures/mmdet/faster_rcnn``:
tiny ResNet-18/FPN-32 trained 300 iterations on tiny_coco, and its two-image ``inputs.pt``).
A family's model dict (v2 syntax) is that fixture's model with the family's parts swapped in;
its weights are the fixture's wherever a key and shape match (the trained backbone, neck, RPN
and usually the box head's classifier), the other tensors seeded random values rounded to
float16 (see :func:`randomize`). Only the family's own tensors are stored (``weights.pth``),
so a golden stays small; the detforge test loads the fixture's weights first.

``expected.pt`` holds what MMDetection computes from that model and those inputs:
``proposals`` (RPN, resized frame), ``dets``/``dets_rescaled`` (per image ``bboxes``,
``scores``, ``labels``), ``losses`` (``parse_losses`` log values, with
``torch.manual_seed(0)`` just before ``model.loss``) and ``grads_all`` (L2 norm of every
parameter's gradient after ``loss.backward()``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
GOLDENS = ROOT / "tests" / "data" / "goldens"
SHARED = Path(os.environ.get("DETFORGE_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "mmdet"
V2_CONFIGS = Path(os.environ.get("MMDET_V2_CONFIGS", "/work/mmdet_v2/configs"))


def versions() -> dict[str, str]:
    import mmcv
    import mmdet
    import mmengine

    return {
        "mmdet": mmdet.__version__,
        "mmcv": mmcv.__version__,
        "mmengine": mmengine.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "torch_threads": str(torch.get_num_threads()),
    }


def base_model(fixture: str = "faster_rcnn") -> dict[str, Any]:
    """A shared fixture's model dict (v2 syntax)."""
    from mmengine.config import Config

    return Config.fromfile(str(FIXTURES / fixture / "model.py")).model.to_dict()


def base_weights(fixture: str = "faster_rcnn") -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / fixture / "weights.pth", weights_only=True)["state_dict"]


def base_inputs(fixture: str = "faster_rcnn") -> dict[str, Any]:
    return torch.load(FIXTURES / fixture / "inputs.pt", weights_only=False)


def build(model_dict: dict[str, Any]) -> torch.nn.Module:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict

    register_all_modules()
    return MODELS.build(ConfigDict(copy.deepcopy(model_dict)))


def randomize(module: torch.nn.Module, names: list[str], seed: int) -> None:
    """Seeded values for the tensors ``names``: weights of >= 2 dims ~ U(+-1/sqrt(fan_in)),
    norm weights and running variances ~ U(0.5, 1.5), other vectors ~ N(0, 0.1); rounded to
    float16 values so that storing them as float16 loses nothing."""
    gen = torch.Generator().manual_seed(seed)
    state = module.state_dict(keep_vars=True)
    with torch.no_grad():
        for name in names:
            t = state[name]
            if not t.is_floating_point():
                continue
            owner = module.get_submodule(name.rsplit(".", 1)[0])
            is_norm = isinstance(owner, torch.nn.modules.batchnorm._NormBase | torch.nn.GroupNorm)
            leaf = name.rsplit(".", 1)[1]
            if leaf == "running_var" or (is_norm and leaf == "weight"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() >= 2:
                bound = 1 / math.sqrt(math.prod(t.shape[1:]))
                t.copy_((torch.rand(t.shape, generator=gen) * 2 - 1) * bound)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            t.copy_(t.half().float())


def load_base_and_randomize(
    model: torch.nn.Module,
    seed: int,
    renamed: dict[str, str] | None = None,
    fixture: str = "faster_rcnn",
) -> list[str]:
    """Fixture weights where a key and shape match (``renamed`` maps a key of the model to
    the fixture key it copies); seeded random values elsewhere. Every tensor whose key is not
    the fixture's is then rounded to float16 values: those are the ones a golden stores (as
    float16), returned here.
    """
    base = base_weights(fixture)
    own = model.state_dict()
    taken = {k: v for k, v in base.items() if k in own and own[k].shape == v.shape}
    copied = {k: base[src] for k, src in (renamed or {}).items()}
    model.load_state_dict({**taken, **copied}, strict=False)
    randomize(model, [k for k in own if k not in taken and k not in copied], seed)
    stored = [k for k in own if k not in taken]
    with torch.no_grad():
        state = model.state_dict(keep_vars=True)
        for k in stored:
            if state[k].is_floating_point():
                state[k].copy_(state[k].half().float())
    return stored


def samples_from_v2(inp: dict[str, Any], proposals: list[torch.Tensor] | None = None) -> list[Any]:
    """MMDetection 3 data samples for the v2 ``inputs.pt`` (the fixtures' ``check_files.py``)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    out = []
    for i, m in enumerate(inp["img_metas"]):
        ds = DetDataSample(
            metainfo=dict(
                img_shape=tuple(m["img_shape"][:2]),
                ori_shape=tuple(m["ori_shape"][:2]),
                pad_shape=tuple(m["pad_shape"][:2]),
                batch_input_shape=tuple(m["batch_input_shape"]),
                scale_factor=(float(m["scale_factor"][0]), float(m["scale_factor"][1])),
                flip=False,
                flip_direction=None,
            )
        )
        gi = InstanceData()
        gi.bboxes = inp["gt_bboxes"][i]
        gi.labels = inp["gt_labels"][i]
        if "gt_masks" in inp:
            from mmdet.structures.mask import BitmapMasks

            h, w = m["batch_input_shape"]
            gi.masks = BitmapMasks(inp["gt_masks"][i], h, w)
        ds.gt_instances = gi
        ig = InstanceData()
        ig.bboxes = inp["gt_bboxes_ignore"][i]
        ig.labels = torch.zeros(len(ig.bboxes), dtype=torch.long)
        ds.ignored_instances = ig
        if proposals is not None:
            pi = InstanceData()
            pi.bboxes = proposals[i][:, :4]
            ds.proposals = pi
        out.append(ds)
    return out


def _dets(results: list[Any]) -> list[dict[str, torch.Tensor]]:
    """Per image ``bboxes``, ``scores``, ``labels`` (and ``mask_areas``: pixels of each
    detection's mask)."""
    out = []
    for r in results:
        p = r.pred_instances
        d = {
            "bboxes": p.bboxes.detach().clone().float(),
            "scores": p.scores.detach().clone().float(),
            "labels": p.labels.detach().clone().long(),
        }
        if "masks" in p:
            d["mask_areas"] = p.masks.flatten(1).sum(1).long()
        out.append(d)
    return out


def compute(
    model: torch.nn.Module,
    inp: dict[str, Any],
    proposals: list[torch.Tensor] | None = None,
    with_rpn: bool = True,
) -> dict[str, Any]:
    """``proposals`` (with an RPN), ``dets``, ``dets_rescaled``, ``losses``, ``grads_all``."""
    img = inp["img"]
    exp: dict[str, Any] = {}
    model.eval()
    with torch.no_grad():
        if with_rpn:
            feats = model.extract_feat(img)
            props = model.rpn_head.predict(feats, samples_from_v2(inp), rescale=False)
            exp["proposals"] = [
                torch.cat([p.bboxes, p.scores[:, None]], 1).detach().clone() for p in props
            ]
        for key, rescale in (("dets", False), ("dets_rescaled", True)):
            exp[key] = _dets(model.predict(img, samples_from_v2(inp, proposals), rescale=rescale))
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    losses = model.loss(img, samples_from_v2(inp, proposals))
    total, log_vars = model.parse_losses(losses)
    total.backward()
    exp["losses"] = OrderedDict(
        (k, float(torch.as_tensor(v).detach())) for k, v in log_vars.items()
    )
    exp["grads_all"] = OrderedDict(
        (n, float(p.grad.norm(2))) for n, p in model.named_parameters() if p.grad is not None
    )
    return exp


def fmt(obj: Any, indent: int = 0) -> str:
    """A config value in v2 Python syntax (the fixtures' ``common.fmt``)."""
    pad = " " * 4
    if isinstance(obj, dict):
        if not obj:
            return "dict()"
        one = "dict(" + ", ".join(f"{k}={fmt(v, 0)}" for k, v in obj.items()) + ")"
        if len(one) + indent * 4 <= 88 and "\n" not in one:
            return one
        items = [pad * (indent + 1) + f"{k}=" + fmt(v, indent + 1) for k, v in obj.items()]
        return "dict(\n" + ",\n".join(items) + ")"
    if isinstance(obj, list | tuple):
        o, c = ("[", "]") if isinstance(obj, list) else ("(", ")")
        tail = "," if isinstance(obj, tuple) and len(obj) == 1 else ""
        one = o + ", ".join(fmt(v, 0) for v in obj) + tail + c
        if len(one) + indent * 4 <= 88 and "\n" not in one:
            return one
        return o + "\n" + ",\n".join(pad * (indent + 1) + fmt(v, indent + 1) for v in obj) + c
    return repr(obj)


def write(
    name: str,
    model_dict: dict[str, Any],
    state: dict[str, torch.Tensor],
    stored_keys: list[str],
    expected: dict[str, Any],
    header: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """``model.py`` (v2 syntax, round-trip checked), ``weights.pth`` (the stored keys of
    ``state`` as float16: the weights the expected values were computed with, taken before
    the training forward updated any BN running statistics), ``expected.pt`` and
    ``info.json`` under ``tests/data/goldens/<name>/``."""
    out = GOLDENS / name
    out.mkdir(parents=True, exist_ok=True)
    text = header + "model = " + fmt(model_dict) + "\n"
    ns: dict[str, Any] = {}
    exec(text, ns)  # round-trip check
    assert ns["model"] == model_dict
    (out / "model.py").write_text(text)
    torch.save(
        {k: state[k].half() if state[k].is_floating_point() else state[k] for k in stored_keys},
        out / "weights.pth",
    )
    torch.save(expected, out / "expected.pt")
    info = {
        "versions": versions(),
        "stored_keys": len(stored_keys),
        "num_dets": [len(d["scores"]) for d in expected["dets"]],
        "losses": expected["losses"],
        **(extra or {}),
    }
    (out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    return out


def layout(model_dict: dict[str, Any]) -> dict[str, Any]:
    """The full-size layout (state_dict keys and shapes, parameter counts) of a model dict."""
    model = build(model_dict)
    return {
        "versions": versions(),
        "num_params": sum(p.numel() for p in model.parameters()),
        "num_trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()],
    }


def v2_model(rel: str) -> dict[str, Any]:
    """``cfg.model`` of the v2.28.2 config ``rel`` (under ``configs/``), read by mmengine."""
    from mmengine.config import Config

    return Config.fromfile(str(V2_CONFIGS / rel)).model.to_dict()


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
