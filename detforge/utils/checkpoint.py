"""Loading weights: MMDetection v2/v3 checkpoints, plain state_dicts, and cached model names.

``filename`` may be a local path, ``torchvision://resnet50`` (torchvision's ImageNet weights),
``open-mmlab://<name>`` (MMCV's model-zoo names) or an ``http(s)://`` URL (found by its file
name, as torch.hub caches downloads). Nothing is downloaded: named weights are
looked up in the local cache folders, ``$DETFORGE_HOME/checkpoints`` (default
``~/.cache/detforge/checkpoints``) and ``$TORCH_HOME/hub/checkpoints`` (default
``~/.cache/torch/hub/checkpoints``); a missing file is an error that names the folder and the file
name to put there. Files are always read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detforge.errors import DetforgeError
from detforge.utils.dist import unwrap_model

__all__ = [
    "CheckpointError",
    "LoadReport",
    "cache_dirs",
    "load_checkpoint",
    "load_pretrained",
    "load_state_dict",
    "read_checkpoint",
    "read_checkpoint_file",
    "resolve_checkpoint",
]

_LOG = logging.getLogger("detforge")

# File names torchvision downloads for its ImageNet ResNets (IMAGENET1K_V1, as MMCV uses).
_TORCHVISION_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "resnet152": "resnet152-394f9c45.pth",
    "resnext50_32x4d": "resnext50_32x4d-7cdf4587.pth",
    "resnext101_32x8d": "resnext101_32x8d-8ba56ff5.pth",
}
# MMCV model-zoo names whose files configs commonly ask for.
_OPEN_MMLAB_FILES = {
    "resnet50_caffe": "resnet50_caffe-788b5fa3.pth",
    "detectron/resnet50_caffe": "resnet50_caffe-788b5fa3.pth",
    "detectron2/resnet50_caffe": "resnet50_msra-5891d200.pth",
    "resnet101_caffe": "resnet101_caffe-3ad79236.pth",
    "detectron/resnet101_caffe": "resnet101_caffe-3ad79236.pth",
    "detectron2/resnet101_caffe": "resnet101_msra-6cc46731.pth",
    "resnext101_32x4d": "resnext101_32x4d-a5af3160.pth",
    "resnext101_64x4d": "resnext101_64x4d-ee2c6f71.pth",
    "vgg16_caffe": "vgg16_caffe-292e1171.pth",
    "darknet53": "darknet53-a628ea1b.pth",
    "mmdet/mobilenet_v2": "mobilenet_v2_batch256_imagenet-ff34753d.pth",
    "msra/hrnetv2_w18": "hrnetv2_w18-00eb2006.pth",
    "msra/hrnetv2_w32": "hrnetv2_w32-dc9eeb4f.pth",
    "msra/hrnetv2_w40": "hrnetv2_w40-ed0b031c.pth",
    "regnetx_400mf": "regnetx_400mf-a5b10d96.pth",
    "regnetx_800mf": "regnetx_800mf-1f4be4c7.pth",
    "regnetx_1.6gf": "regnetx_1.6gf-5791c176.pth",
    "regnetx_3.2gf": "regnetx_3.2gf-c2599b0f.pth",
    "regnetx_4.0gf": "regnetx_4.0gf-a88f671e.pth",
    "regnetx_6.4gf": "regnetx_6.4gf-006af45d.pth",
    "regnetx_8.0gf": "regnetx_8.0gf-3c68abe7.pth",
    "regnetx_12gf": "regnetx_12gf-4c2a3350.pth",
    "res2net101_v1d_26w_4s": "res2net101_v1d_26w_4s_mmdetv2-f0a600f9.pth",
    "resnest50": "resnest50_d2-7497a55b.pth",
    "resnest101": "resnest101_d2-f3b931b2.pth",
    "jhu/resnet50_gn_ws": "resnet50_gn_ws-15beedd8.pth",
    "jhu/resnet101_gn_ws": "resnet101_gn_ws-3e3c308c.pth",
    "jhu/resnext50_32x4d_gn_ws": "resnext50_32x4d_gn_ws-0d87ac85.pth",
    "jhu/resnext101_32x4d_gn_ws": "resnext101_32x4d_gn_ws-34ac1a9e.pth",
}


class CheckpointError(DetforgeError, FileNotFoundError):
    """A checkpoint cannot be found or read; the message says where it was expected."""


def cache_dirs() -> list[Path]:
    """Folders searched for named weights, in order."""
    home = Path(os.environ.get("DETFORGE_HOME", Path.home() / ".cache" / "detforge"))
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return [home / "checkpoints", torch_home / "hub" / "checkpoints"]


def _find_cached(name: str, known: Mapping[str, str], scheme: str) -> Path:
    key = name.strip("/")
    expected = known.get(key)
    stem = key.replace("/", "_")
    candidates = [expected] if expected else []
    candidates += [f"{stem}.pth", f"{key.split('/')[-1]}.pth"]
    for folder in cache_dirs():
        for file_name in candidates:
            if (folder / file_name).is_file():
                return folder / file_name
        if folder.is_dir():  # any other version of the same weights, e.g. resnet50-11ad3fa6.pth
            for path in sorted(folder.glob(f"{key.split('/')[-1]}-*.pth")):
                return path
    want = expected or f"{stem}.pth"
    raise CheckpointError(
        f"{scheme}{name}: weights not found and detforge never downloads. Put the file "
        f"'{want}' into {cache_dirs()[0]} (or {cache_dirs()[1]}), or use a local path "
        "(e.g. init_cfg=dict(type='Pretrained', checkpoint='/path/to/file.pth'))"
    )


def _find_downloaded(url: str) -> Path:
    """The cached copy of a URL's file (torch.hub and MMDetection v2 keep downloads in
    ``$TORCH_HOME/hub/checkpoints`` under the URL's file name)."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    for folder in cache_dirs():
        if name and (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"{url}: weights not found, and detforge does not download. Put the file '{name}' into "
        f"{cache_dirs()[0]} (or {cache_dirs()[1]}, where torch.hub and MMDetection v2 keep it), "
        "or use a local path"
    )


def resolve_checkpoint(filename: str | os.PathLike[str]) -> Path:
    """The local file behind a path or a ``torchvision://``/``open-mmlab://`` name.

    Raises:
        CheckpointError: the file is not there (the message says where to put it).
    """
    text = str(filename)
    if text.startswith("torchvision://"):
        return _find_cached(text[len("torchvision://") :], _TORCHVISION_FILES, "torchvision://")
    if text.startswith(("open-mmlab://", "openmmlab://")):
        name = text.split("://", 1)[1]
        return _find_cached(name, _OPEN_MMLAB_FILES, "open-mmlab://")
    if re.match(r"^https?://", text):
        return _find_downloaded(text)
    if re.match(r"^(s3|mmcls|pavi)://", text):
        raise CheckpointError(
            f"{text}: detforge does not download weights; download the file yourself and pass "
            "its local path"
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {text} (looked for {path.resolve()})")
    return path


def read_checkpoint_file(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load`` of a local checkpoint file (``weights_only``), as it is stored.

    Raises:
        CheckpointError: the file cannot be read: it is empty or truncated, or it holds code or
            objects other than tensors and plain data (refused, never unpickled).
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # PyTorch's text advises loading with weights_only=False, which runs the file's code.
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            raise CheckpointError(
                f"refused to read checkpoint {path}: it contains code or objects other than "
                f"tensors and plain data ({found.group(1)}), which detforge never unpickles"
            ) from None
        found = re.search(r"WeightsUnpickler error: \s*(.+)", text)
        why = found.group(1).strip() if found else text.splitlines()[0]
        raise CheckpointError(
            f"refused to read checkpoint {path}: PyTorch's safe (weights-only) reader does not "
            f"accept it ({why})"
        ) from None
    except EOFError:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty") from None
    except IsADirectoryError:
        raise CheckpointError(f"cannot read checkpoint {path}: it is a directory") from None
    except Exception as exc:  # a truncated zip, a file that is no checkpoint at all, ...
        raise CheckpointError(
            f"cannot read checkpoint {path} (truncated, corrupt or not a PyTorch file): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _extract_state_dict(checkpoint: Any, path: Path) -> OrderedDict[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping) and "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
    elif (
        isinstance(checkpoint, Mapping)
        and "model" in checkpoint
        and isinstance(checkpoint["model"], Mapping)
    ):
        state = checkpoint["model"]
    else:
        state = checkpoint
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path}: no state_dict found (got {type(state).__name__})")
    return OrderedDict((k, v) for k, v in state.items() if isinstance(v, torch.Tensor))


def _key_table(title: str, keys: Iterable[str], limit: int = 12) -> str:
    keys = sorted(keys)
    shown = "\n".join(f"    {k}" for k in keys[:limit])
    more = f"\n    ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"  {title} ({len(keys)}):\n{shown}{more}"


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_state_dict` put into a model.

    Attributes:
        model: The model's class name.
        total: Entries of the model's state_dict.
        loaded: How many of them were set from the checkpoint.
        missing: Model keys the checkpoint does not have (BatchNorm ``num_batches_tracked``
            counters are in ``counters`` instead).
        missing_weights: The part of ``missing`` that are learned: parameters and BatchNorm
            running statistics. Other buffers (constants a module computes itself, such as
            GFL's ``integral.project``) keep the model's own values.
        unexpected: Checkpoint keys the model does not have (e.g. the ``ema_*`` buffers that
            v2's EMA hooks leave in checkpoints).
        mismatched: ``'key: checkpoint (shape) vs model (shape)'`` of tensors not loaded.
        counters: BatchNorm ``num_batches_tracked`` counters the checkpoint lacks (PyTorch
            sets them to 0; inference does not use them).
    """

    model: str
    total: int
    loaded: int
    missing: list[str] = field(default_factory=list)
    missing_weights: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every weight of the model came from the checkpoint."""
        return not self.missing_weights and not self.mismatched

    def summary(self) -> str:
        """One line, e.g. ``'148 of 150 tensors; 2 of another shape'``.

        Example:
            >>> LoadReport('Linear', total=2, loaded=1, missing=['bias'],
            ...            missing_weights=['bias']).summary()
            '1 of 2 tensors; 1 missing (1 weight)'
        """
        parts = [f"{self.loaded} of {self.total} tensors"]
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} of another shape")
        if self.missing:
            weights = len(self.missing_weights)
            parts.append(f"{len(self.missing)} missing ({weights} weight{'s' * (weights != 1)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected")
        if self.counters:
            parts.append(f"{len(self.counters)} BatchNorm num_batches_tracked absent (set to 0)")
        return "; ".join(parts)

    def describe(self, source: str, verb: str = "loaded into") -> str:
        """``'<source> <verb> <model> (<summary>):'`` and the tables of mismatched, missing
        and unexpected keys."""
        lines = [f"{source} {verb} {self.model} ({self.summary()}):"]
        if self.mismatched:
            lines.append(_key_table("shape mismatch", self.mismatched))
        if self.missing:
            lines.append(_key_table("missing in checkpoint", self.missing))
        if self.unexpected:
            lines.append(_key_table("unexpected in checkpoint", self.unexpected))
        return "\n".join(lines)


def _weight_keys(module: nn.Module, own: Mapping[str, torch.Tensor]) -> set[str]:
    """Keys of the learned tensors: parameters and BatchNorm running statistics."""
    keys = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    keys.update(k for k in own if k.rsplit(".", 1)[-1] in ("running_mean", "running_var"))
    return keys


def load_state_dict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    strict: bool = False,
    source: str = "state_dict",
    logger: logging.Logger | None = None,
) -> LoadReport:
    """Load ``state_dict`` into ``module`` (DataParallel/DDP wrappers are looked through).

    Tensors whose shapes differ are not loaded (they count as mismatched). Missing,
    unexpected and mismatched keys are logged as a warning listing them. With ``strict``, a
    checkpoint that leaves a weight of the model unset (missing or of another shape, see
    :attr:`LoadReport.missing_weights`) is an error; keys the model does not have are only
    reported, since v2 checkpoints of EMA runs carry ``ema_*`` buffers.

    Args:
        module: The model (or a wrapper around it).
        state_dict: Keys as the model names them.
        strict: Fail on missing weights instead of warning (for inference and resuming).
        source: Names the checkpoint in messages (its path).
        logger: Where the warning goes (the ``detforge`` logger by default).

    Returns:
        What was loaded, see :class:`LoadReport`.

    Raises:
        CheckpointError: no tensor of ``state_dict`` fits the model, or ``strict`` and a
            weight is missing; the message lists the keys and names ``source`` and the model.

    Example:
        >>> report = load_state_dict(nn.Linear(2, 1), nn.Linear(2, 1).state_dict(), strict=True)
        >>> report.summary()
        '2 of 2 tensors'
    """
    module = unwrap_model(module)
    own = module.state_dict()
    model_name = type(module).__name__
    mismatched = {
        k: f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    }
    loadable = {k: v for k, v in state_dict.items() if k not in mismatched}
    try:
        result = module.load_state_dict(loadable, strict=False)
    except RuntimeError as exc:  # a shape mismatch under a key a module's load hook renamed
        raise CheckpointError(f"{source} does not fit {model_name}: {exc}") from None
    counters = [k for k in own if k.endswith("num_batches_tracked") and k not in loadable]
    missing = [
        k for k in result.missing_keys if k in own and k not in mismatched and k not in counters
    ]
    weights = _weight_keys(module, own)
    report = LoadReport(
        model=model_name,
        total=len(own),
        loaded=len(own) - len(missing) - len(mismatched) - len(counters),
        missing=missing,
        missing_weights=[k for k in missing if k in weights],
        unexpected=list(result.unexpected_keys),
        mismatched=list(mismatched.values()),
        counters=counters,
    )
    if report.loaded == 0 and report.total > 0:
        raise CheckpointError(report.describe(source, "does not fit") + "\nNo tensor of it fits.")
    if strict and not report.complete:
        raise CheckpointError(
            report.describe(source, "does not fit")
            + "\nThose weights would keep their random values. To load it anyway (e.g. to "
            "fine-tune a new head) use strict=False: --allow-partial of test/infer/serve/export, "
            "or load_from to start training from it."
        )
    if report.missing or report.unexpected or report.mismatched:
        (logger or _LOG).warning(report.describe(source))
    return report


def read_checkpoint(
    filename: str | os.PathLike[str],
    map_location: Any = "cpu",
    revise_keys: Iterable[tuple[str, str]] = ((r"^module\.", ""),),
) -> tuple[dict[str, Any], OrderedDict[str, torch.Tensor]]:
    """Read a checkpoint: ``(whole checkpoint dict, its state_dict with revised keys)``.

    Reads MMDetection v2 and v3 checkpoints (``{'meta', 'state_dict', ...}``; v3's
    ``data_preprocessor.*`` buffers are dropped), plain state_dicts and torchvision files.
    ``revise_keys`` are ``(regex, replacement)`` pairs applied to every key (the default strips
    the ``module.`` prefix of DataParallel/DDP checkpoints).

    Raises:
        CheckpointError: the file is missing (the message says where it was expected) or
            unreadable.
    """
    path = resolve_checkpoint(filename)
    checkpoint = read_checkpoint_file(path, map_location)
    state = _extract_state_dict(checkpoint, path)
    for pattern, replacement in revise_keys:
        state = OrderedDict((re.sub(pattern, replacement, k), v) for k, v in state.items())
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("data_preprocessor."))
    whole = dict(checkpoint) if isinstance(checkpoint, Mapping) else {}
    return whole, state


def load_checkpoint(
    model: nn.Module,
    filename: str | os.PathLike[str],
    map_location: Any = "cpu",
    strict: bool = False,
    logger: logging.Logger | None = None,
    revise_keys: Iterable[tuple[str, str]] = ((r"^module\.", ""),),
) -> dict[str, Any]:
    """Load weights into ``model`` (see :func:`read_checkpoint`) and return the checkpoint dict.

    The log line says how many of the model's tensors were loaded. ``strict`` fails on
    weights the checkpoint leaves unset, see :func:`load_state_dict`.

    Raises:
        CheckpointError: the file is missing or unreadable, no tensor of it fits ``model``, or
            ``strict`` and a weight of ``model`` is missing or of another shape.
    """
    checkpoint, state = read_checkpoint(filename, map_location, revise_keys)
    report = load_state_dict(model, state, strict=strict, source=str(filename), logger=logger)
    (logger or _LOG).info("loaded %s into %s: %s", filename, report.model, report.summary())
    return checkpoint or {"state_dict": state}


def load_pretrained(
    module: nn.Module, checkpoint: str, prefix: str | None = None, map_location: str | None = None
) -> None:
    """Load ``checkpoint`` into ``module`` non-strictly (keys under ``prefix`` only, if given).

    This is what ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` runs.

    Raises:
        CheckpointError: the file is missing (the message says where to put it) or no tensor
            of it fits ``module``.
        ValueError: no key of the checkpoint starts with ``prefix``.
    """
    _, state = read_checkpoint(checkpoint, map_location or "cpu")
    if prefix:
        head = prefix if prefix.endswith(".") else prefix + "."
        state = OrderedDict((k[len(head) :], v) for k, v in state.items() if k.startswith(head))
        if not state:
            raise ValueError(f"{checkpoint}: no weights under the prefix '{prefix}'")
    load_state_dict(module, state, strict=False, source=checkpoint)
