"""Hooks that subprocess training runs in tests load through ``custom_imports``.

``StallHook`` freezes a run at a chosen iteration (``$DETFORGE_TEST_STALL_AT_ITER``) so that a
test can kill it there; ``RankRecordHook`` writes each rank's parameters and the image files
of its batches, per epoch, into the work dir.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import torch

from detforge.engine.hooks import Hook
from detforge.registry import HOOKS
from detforge.utils.dist import get_dist_info

__all__ = ["RankRecordHook", "StallHook"]


@HOOKS.register_module(force=True)
class StallHook(Hook):
    """Sleep for ``seconds`` after training iteration ``$DETFORGE_TEST_STALL_AT_ITER``
    (1-based); a no-op when the variable is not set."""

    def __init__(self, seconds: float = 120.0) -> None:
        self.seconds = seconds

    def after_train_iter(self, runner: Any) -> None:
        at = os.environ.get("DETFORGE_TEST_STALL_AT_ITER")
        if at is not None and runner.iter + 1 == int(at):
            time.sleep(self.seconds)


@HOOKS.register_module(force=True)
class RankRecordHook(Hook):
    """Save ``rank<r>_params.pth`` after the run and ``rank<r>_batches.json``
    (``{epoch: [file names in batch order]}``)."""

    def before_run(self, runner: Any) -> None:
        self.batches: dict[int, list[str]] = {}

    def after_train_iter(self, runner: Any) -> None:
        metas = runner.data_batch["img_metas"]
        names = [os.path.basename(m["filename"]) for m in metas]
        self.batches.setdefault(runner.epoch, []).extend(names)

    def after_run(self, runner: Any) -> None:
        rank, _ = get_dist_info()
        model = getattr(runner.model, "module", runner.model)
        params = {k: v.detach().clone() for k, v in model.named_parameters()}
        torch.save(params, os.path.join(runner.work_dir, f"rank{rank}_params.pth"))
        with open(os.path.join(runner.work_dir, f"rank{rank}_batches.json"), "w") as f:
            json.dump(self.batches, f)
