"""Loading weights: MMDetection v2/v3 checkpoints, plain state_dicts, and cached model names.

``filename`` may be a local path, ``torchvision://resnet50`` (torchvision's ImageNet weights) or
``open-mmlab://<name>`` (MMCV's model-zoo names). Nothing is downloaded: named weights are
looked up in the local cache folders, ``$DETFORGE_HOME/checkpoints`` (default
``~/.cache/detforge/checkpoints``) and ``$TORCH_HOME/hub/checkpoints`` (default
``~/.cache/torch/hub/checkpoints``); a missing file is an error that names the folder and the file
name to put there. Files are always read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detforge.errors import DetforgeError

__all__ = [
    "CheckpointError",
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
    if re.match(r"^(https?|s3|mmcls|pavi)://", text):
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
        CheckpointError: the file cannot be read (truncated, needs arbitrary code to unpickle).
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated file, a pickle that needs code, ...
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc


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


def load_state_dict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    strict: bool = False,
    source: str = "state_dict",
) -> tuple[list[str], list[str]]:
    """Load ``state_dict`` into ``module``; report missing/unexpected keys and shape mismatches.

    Tensors whose shapes differ are not loaded (they count as mismatched). With ``strict``,
    any missing, unexpected or mismatched key is an error listing them.

    Returns:
        ``(missing_keys, unexpected_keys)``.
    """
    own = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    loadable = {k: v for k, v in state_dict.items() if k not in own or own[k].shape == v.shape}
    result = module.load_state_dict(loadable, strict=False)
    missing = [k for k in result.missing_keys if k in own]
    unexpected = list(result.unexpected_keys)
    mismatched_keys = [m.split(":")[0] for m in mismatched]
    missing = [k for k in missing if k not in mismatched_keys]
    if missing or unexpected or mismatched:
        parts = [f"{source} does not match {type(module).__name__}:"]
        if mismatched:
            parts.append(_key_table("shape mismatch", mismatched))
        if missing:
            parts.append(_key_table("missing in checkpoint", missing))
        if unexpected:
            parts.append(_key_table("unexpected in checkpoint", unexpected))
        message = "\n".join(parts)
        if strict:
            raise RuntimeError(message)
        _LOG.warning(message)
    return missing, unexpected


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

    Raises:
        CheckpointError: the file is missing or unreadable.
        RuntimeError: ``strict`` and the keys do not match.
    """
    checkpoint, state = read_checkpoint(filename, map_location, revise_keys)
    load_state_dict(model, state, strict=strict, source=str(filename))
    (logger or _LOG).info("loaded checkpoint %s", filename)
    return checkpoint or {"state_dict": state}


def load_pretrained(
    module: nn.Module, checkpoint: str, prefix: str | None = None, map_location: str | None = None
) -> None:
    """Load ``checkpoint`` into ``module`` non-strictly (keys under ``prefix`` only, if given).

    This is what ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` runs.

    Raises:
        CheckpointError: the file is missing (the message says where to put it).
        ValueError: no key of the checkpoint starts with ``prefix``.
    """
    _, state = read_checkpoint(checkpoint, map_location or "cpu")
    if prefix:
        head = prefix if prefix.endswith(".") else prefix + "."
        state = OrderedDict((k[len(head) :], v) for k, v in state.items() if k.startswith(head))
        if not state:
            raise ValueError(f"{checkpoint}: no weights under the prefix '{prefix}'")
    load_state_dict(module, state, strict=False, source=checkpoint)
