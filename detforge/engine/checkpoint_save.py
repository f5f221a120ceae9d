"""Writing checkpoints in MMDetection v2's layout, atomically, and finding the newest one.

A saved file is a ``torch.save`` dict::

    {'meta': {'detforge_version', 'time', 'CLASSES' (if the model has them), 'fp16' (if a
              scaler is given), plus the caller's keys: 'epoch', 'iter', 'config', 'seed', ...},
     'state_dict': OrderedDict of CPU tensors (no 'module.' prefix of DataParallel/DDP),
     'optimizer': optimizer.state_dict() (or a dict of them for several optimizers)}

The file is written to a temporary file in the same folder and renamed over the target, so a
crash or a full disk never leaves a torn checkpoint behind.

:func:`capture_rng_state` and :func:`restore_rng_state` give the random-number state a runner
stores under ``meta['rng']`` for an exact resume: Python's ``random``, numpy's global
generator (used by samplers and transforms), torch's CPU generator and, when CUDA is in use,
every CUDA device's generator.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import detforge
from detforge.utils.checkpoint import CheckpointError, read_checkpoint_file
from detforge.utils.dist import unwrap_model
from detforge.utils.fileio import atomic_write

__all__ = [
    "capture_rng_state",
    "check_latest_link",
    "find_latest_checkpoint",
    "point_latest",
    "restore_rng_state",
    "save_checkpoint",
]

_NUMBERED = re.compile(r"^(?:epoch|iter)_(\d+)\.pth$")


def _cpu_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """The state_dict on CPU, without the ``module.`` level of wrapped (sub)modules."""
    model = unwrap_model(model)
    state = model.state_dict()
    wrapped = [name for name, mod in model.named_modules() if name and unwrap_model(mod) is not mod]
    # Deepest wrappers first, so a wrapper nested in a wrapper is stripped level by level.
    wrapped.sort(key=lambda n: n.count("."), reverse=True)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        for name in wrapped:
            if key.startswith(f"{name}.module."):
                key = f"{name}.{key[len(name) + len('.module.') :]}"
        out[key] = value.detach().cpu()
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]  # torch's, not in OrderedDict's stubs
    return out


def _plain(value: Any) -> Any:
    """Meta values as types that ``torch.load(weights_only=True)`` reads back."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def save_checkpoint(
    model: nn.Module,
    filename: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer] | None = None,
    meta: Mapping[str, Any] | None = None,
    scaler: Any = None,
) -> None:
    """Save ``model`` (and optimizer, scaler state) to ``filename`` atomically.

    Args:
        model: The model; DataParallel/DDP wrappers are looked through.
        filename: Target path; missing folders are created.
        optimizer: An optimizer, or a dict of named optimizers, whose state is saved.
        meta: Extra meta entries (``epoch``, ``iter``, ``config``, ``seed``, ``hook_msgs`` ...).
        scaler: An AMP ``GradScaler`` (anything with ``state_dict()``); saved as
            ``meta['fp16']['loss_scaler']`` as v2's fp16 hook does.

    Raises:
        TypeError: ``meta`` is not a dict or ``optimizer`` is not an optimizer.
        OSError: the file could not be written (the message names it); an existing file at
            ``filename`` is left as it was.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / 'epoch_1.pth'
        >>> save_checkpoint(nn.Linear(2, 1), path, meta=dict(epoch=1, iter=10))
        >>> sorted(torch.load(path, weights_only=True)['meta'])
        ['detforge_version', 'epoch', 'iter', 'time']
    """
    if meta is None:
        meta_out: dict[str, Any] = {}
    elif isinstance(meta, Mapping):
        meta_out = _plain(dict(meta))
    else:
        raise TypeError(f"save_checkpoint({filename}): meta must be a dict, got {type(meta)}")
    meta_out.update(detforge_version=detforge.__version__, time=time.asctime())
    bare = unwrap_model(model)
    classes = getattr(bare, "CLASSES", None)
    if classes is not None:
        meta_out["CLASSES"] = _plain(classes)
    if scaler is not None:
        fp16 = dict(meta_out.get("fp16") or {})
        fp16["loss_scaler"] = scaler.state_dict()
        meta_out["fp16"] = fp16

    checkpoint: dict[str, Any] = {"meta": meta_out, "state_dict": _cpu_state_dict(model)}
    if isinstance(optimizer, torch.optim.Optimizer):
        checkpoint["optimizer"] = optimizer.state_dict()
    elif isinstance(optimizer, Mapping):
        checkpoint["optimizer"] = {}
        for name, opt in optimizer.items():
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError(
                    f"save_checkpoint({filename}): optimizer[{name!r}] is {type(opt)}, "
                    "not a torch.optim.Optimizer"
                )
            checkpoint["optimizer"][name] = opt.state_dict()
    elif optimizer is not None:
        raise TypeError(
            f"save_checkpoint({filename}): optimizer must be an Optimizer or a dict of them, "
            f"got {type(optimizer)}"
        )

    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write(filename, buffer.getvalue())


def check_latest_link(out_dir: str | os.PathLike[str]) -> None:
    """Fail now if ``out_dir/latest.pth`` is a directory, which :func:`point_latest` could not
    replace after the first checkpoint.

    Raises:
        CheckpointError: ``latest.pth`` is a directory (the message names it).
    """
    latest = os.path.join(out_dir, "latest.pth")
    if os.path.isdir(latest) and not os.path.islink(latest):
        raise CheckpointError(
            f"{latest} is a directory, but checkpoints are saved as epoch_N.pth/iter_N.pth "
            "with latest.pth a link to the newest one; move it away and run again"
        )


def point_latest(out_dir: str | os.PathLike[str], filename: str, path: str) -> None:
    """Make ``out_dir/latest.pth`` a link to ``filename`` (a copy of ``path`` where links fail),
    replacing the old one in one rename so that it never goes missing.

    Raises:
        CheckpointError: ``latest.pth`` cannot be replaced (e.g. it is a directory); nothing is
            left behind.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> save_checkpoint(nn.Linear(2, 1), folder / 'epoch_1.pth')
        >>> point_latest(folder, 'epoch_1.pth', str(folder / 'epoch_1.pth'))
        >>> os.readlink(folder / 'latest.pth')
        'epoch_1.pth'
    """
    latest = os.path.join(out_dir, "latest.pth")
    tmp = os.path.join(out_dir, f".latest.pth.{os.getpid()}.tmp")
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.symlink(filename, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    try:
        os.replace(tmp, latest)
    except OSError as exc:
        os.remove(tmp)
        raise CheckpointError(f"cannot point {latest} at {filename}: {exc}") from exc


def capture_rng_state() -> dict[str, Any]:
    """The state of every global random generator, in types ``torch.load(weights_only=True)``
    reads back.

    Returns:
        ``dict(python=(version, ints, gauss_next), numpy=dict(...), torch=ByteTensor)`` plus
        ``cuda=[ByteTensor per device]`` when CUDA has been initialised.

    Example:
        >>> state = capture_rng_state()
        >>> a = (random.random(), np.random.rand(), torch.rand(1).item())
        >>> _ = restore_rng_state(state)
        >>> a == (random.random(), np.random.rand(), torch.rand(1).item())
        True
    """
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = dict(
        python=(int(version), tuple(int(v) for v in internal), gauss_next),
        numpy=dict(
            bit_generator=str(name),
            state=torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached),
        ),
        torch=torch.get_rng_state(),
    )
    # torch.cuda.is_initialized has no annotations (torch 2.14)
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: Mapping[str, Any]) -> list[str]:
    """Set the global random generators from :func:`capture_rng_state`'s dict.

    Older checkpoints whose ``python`` entry is only the list of internal ints are read too.
    CUDA states are restored only when the same number of devices is visible.

    Returns:
        The names of the generators that were restored, e.g. ``['python', 'numpy', 'torch']``.

    Raises:
        ValueError: an entry is present but malformed (the message names it).
    """
    restored = []
    python = state.get("python")
    if python is not None:
        if len(python) == 3 and not isinstance(python[0], list | tuple) and python[0] == 3:
            version, internal, gauss_next = python
        else:  # a bare list of the 625 internal ints
            version, internal, gauss_next = 3, python, None
        try:
            random.setstate((int(version), tuple(int(v) for v in internal), gauss_next))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"rng state: bad 'python' entry: {exc}") from exc
        restored.append("python")
    numpy_state = state.get("numpy")
    if numpy_state is not None:
        keys = numpy_state["state"]
        keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
        np.random.set_state(
            (
                numpy_state.get("bit_generator", "MT19937"),
                keys.astype(np.uint32),
                int(numpy_state["pos"]),
                int(numpy_state.get("has_gauss", 0)),
                float(numpy_state.get("cached_gaussian", 0.0)),
            )
        )
        restored.append("numpy")
    if state.get("torch") is not None:
        torch.set_rng_state(state["torch"])
        restored.append("torch")
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
        restored.append("cuda")
    return restored


def _is_valid(path: Path) -> bool:
    try:
        content = read_checkpoint_file(path)
    except CheckpointError as exc:  # truncated, not a zip/pickle, a directory, ...
        warnings.warn(f"{exc}; skipped", stacklevel=3)
        return False
    if not isinstance(content, Mapping):
        warnings.warn(f"skipping {path}: not a checkpoint dict", stacklevel=3)
        return False
    return True


def find_latest_checkpoint(work_dir: str | os.PathLike[str]) -> str | None:
    """The checkpoint ``--auto-resume`` resumes from, as MMDetection v2 picks it.

    ``latest.pth`` when it exists and is readable, else the readable ``epoch_N.pth`` or
    ``iter_N.pth`` with the largest ``N``. Unreadable files are skipped with a warning.

    Returns:
        The path as a string, or ``None`` (with a warning) when there is none.

    Example:
        >>> import tempfile
        >>> work_dir = Path(tempfile.mkdtemp())
        >>> for n in (2, 10):
        ...     save_checkpoint(nn.Linear(2, 1), work_dir / f'epoch_{n}.pth')
        >>> Path(find_latest_checkpoint(work_dir)).name
        'epoch_10.pth'
    """
    folder = Path(work_dir)
    if not folder.is_dir():
        warnings.warn(f"no checkpoints to resume from: {folder} does not exist", stacklevel=2)
        return None
    candidates: list[Path] = []
    latest = folder / "latest.pth"
    if latest.exists() or latest.is_symlink():
        candidates.append(latest)
    numbered = []
    for path in folder.iterdir():
        match = _NUMBERED.match(path.name)
        if match:
            numbered.append((int(match.group(1)), path.name, path))
    candidates += [path for _, _, path in sorted(numbered, reverse=True)]
    for path in candidates:
        if _is_valid(path):
            return str(path)
    warnings.warn(f"no readable checkpoint in {folder}", stacklevel=2)
    return None
