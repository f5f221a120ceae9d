"""``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None)``: load weights from a file.

Registered as the loader of :mod:`detforge.models.layers.init` on import, so every
``Pretrained`` init goes through :func:`detforge.engine.checkpoint.read_checkpoint` (local
files and cached ``torchvision://``/``open-mmlab://`` names; never a download).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from detforge.engine.checkpoint import load_state_dict, read_checkpoint
from detforge.models.layers import set_pretrained_loader

__all__ = ["load_pretrained"]


def load_pretrained(
    module: nn.Module, checkpoint: str, prefix: str | None = None, map_location: str | None = None
) -> None:
    """Load ``checkpoint`` into ``module`` non-strictly (keys under ``prefix`` only, if given).

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


set_pretrained_loader(load_pretrained)
