"""Prepare a training checkpoint for release (v2's ``tools/model_converters/publish_model.py``).

The optimizer state, the random-number-generator state and the AMP loss-scaler state are
dropped (they only matter for resuming); weights and the rest of ``meta`` (``CLASSES``,
``config``, ``epoch``...) stay. The file is written as ``<out without .pth>-<hash>.pth``, where
``<hash>`` is the first 8 hex digits of the SHA-256 of the written bytes: the model-zoo naming
(``faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth``).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from detforge.utils.checkpoint import CheckpointError, read_checkpoint_file
from detforge.utils.fileio import atomic_write

__all__ = ["RESUME_ONLY_META", "publish_model"]

#: ``meta`` entries only a resumed run uses.
RESUME_ONLY_META = ("rng", "fp16")


def publish_model(in_file: str | os.PathLike[str], out_file: str | os.PathLike[str]) -> Path:
    """Write the published copy of ``in_file`` and return its path.

    Args:
        in_file: A checkpoint (``{'state_dict', 'meta', 'optimizer', ...}``).
        out_file: Target name; ``.pth`` is optional (``work/model`` and ``work/model.pth`` both
            give ``work/model-<hash>.pth``).

    Raises:
        CheckpointError: ``in_file`` does not exist or cannot be read, is not a checkpoint dict
            with a ``state_dict``, or its ``state_dict`` holds no tensor.

    Example:
        >>> import tempfile
        >>> from torch import nn
        >>> from detforge.engine.checkpoint_save import save_checkpoint
        >>> root = Path(tempfile.mkdtemp())
        >>> model = nn.Linear(2, 1)
        >>> save_checkpoint(model, root / 'epoch_1.pth', torch.optim.SGD(model.parameters(), 0.1))
        >>> out = publish_model(root / 'epoch_1.pth', root / 'linear.pth')
        >>> out.name.startswith('linear-'), 'optimizer' in torch.load(out, weights_only=True)
        (True, False)
    """
    source = Path(in_file)
    if not source.is_file():
        raise CheckpointError(f"checkpoint not found: {source}")
    checkpoint = read_checkpoint_file(source)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(
            f"{source} is not a training checkpoint (a dict with 'state_dict'); nothing to publish"
        )
    state = checkpoint["state_dict"]
    if not any(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(
            f"{source}: its state_dict holds no tensor ({len(state)} entries); nothing to publish"
        )
    published = {k: v for k, v in checkpoint.items() if k != "optimizer"}
    meta = published.get("meta")
    if isinstance(meta, Mapping):
        published["meta"] = {k: v for k, v in meta.items() if k not in RESUME_ONLY_META}
    buffer = io.BytesIO()
    torch.save(published, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    target = Path(out_file)
    stem = target.name[: -len(".pth")] if target.name.endswith(".pth") else target.name
    final = target.with_name(f"{stem}-{digest[:8]}.pth")
    atomic_write(final, data)
    return final
