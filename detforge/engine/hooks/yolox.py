"""The hooks of MMDetection v2's YOLOX configs: ``YOLOXModeSwitchHook`` and ``SyncNormHook``.

Both act at epoch boundaries. ``YOLOXModeSwitchHook`` switches the training data to its
plain pipeline (the dataset skips ``Mosaic``/``RandomAffine``/``MixUp``) and the head to its
extra L1 loss before epoch ``max_epochs - num_last_epochs - 1`` (0-based, v2's off-by-one:
the last ``num_last_epochs + 1`` epochs run plain). Unlike v2, which switches only at that
exact epoch, a run resumed later switches at its first epoch too. ``SyncNormHook`` averages
the norm layers' state over the ranks after every ``interval``-th epoch, and after every epoch
from that same switch on; on one process it does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from detforge.engine.hooks.base import Hook
from detforge.engine.protocols import Runner
from detforge.errors import ConfigError
from detforge.registry import HOOKS
from detforge.utils.dist import get_dist_info, unwrap_model

__all__ = ["SyncNormHook", "YOLOXModeSwitchHook", "norm_states"]


def _switch_epoch(runner: Runner, num_last_epochs: int, hook: str) -> int:
    if runner.max_epochs is None:
        raise ConfigError(f"{hook} needs an epoch-based runner (max_epochs)")
    return runner.max_epochs - num_last_epochs - 1


@HOOKS.register_module()
class YOLOXModeSwitchHook(Hook):
    """Turn off the mosaic-style transforms and turn on ``bbox_head.use_l1`` for the last
    epochs (see the module docstring).

    Args:
        num_last_epochs: Epochs at the end of training without them (v2: plus one).
        skip_type_keys: Transform types the training dataset skips from the switch on.
    """

    def __init__(
        self,
        num_last_epochs: int = 15,
        skip_type_keys: Sequence[str] = ("Mosaic", "RandomAffine", "MixUp"),
    ) -> None:
        self.num_last_epochs = num_last_epochs
        self.skip_type_keys = list(skip_type_keys)
        self._switched = False

    def before_train_epoch(self, runner: Runner) -> None:
        switch = _switch_epoch(runner, self.num_last_epochs, "YOLOXModeSwitchHook")
        if self._switched or runner.epoch < switch:
            return
        self._switched = True
        loader: Any = runner.data_loader
        dataset: Any = getattr(loader, "dataset", None)
        if not hasattr(dataset, "update_skip_type_keys"):
            raise ConfigError(
                "YOLOXModeSwitchHook: the training dataset "
                f"({type(dataset).__name__}) has no update_skip_type_keys; wrap it in "
                "MultiImageMixDataset"
            )
        runner.logger.info("No mosaic and mixup aug now!")
        dataset.update_skip_type_keys(self.skip_type_keys)
        if getattr(loader, "persistent_workers", False) and hasattr(loader, "_iterator"):
            # persistent workers hold copies of the dataset: start new ones
            loader._iterator = None
        head = getattr(unwrap_model(runner.model), "bbox_head", None)
        if head is None or not hasattr(head, "use_l1"):
            raise ConfigError("YOLOXModeSwitchHook: the model's bbox_head has no use_l1 switch")
        runner.logger.info("Add additional L1 loss now!")
        head.use_l1 = True


def norm_states(module: nn.Module) -> dict[str, torch.Tensor]:
    """The state (affine parameters and running statistics) of every batch-norm-like layer,
    by state-dict key.

    Example:
        >>> sorted(norm_states(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))))[:2]
        ['1.bias', '1.num_batches_tracked']
    """
    states = {}
    for name, child in module.named_modules():
        if isinstance(child, nn.modules.batchnorm._NormBase):
            for key, value in child.state_dict().items():
                states[f"{name}.{key}"] = value
    return states


@HOOKS.register_module()
class SyncNormHook(Hook):
    """Average the norm layers' states over the ranks after training epochs (see the module
    docstring).

    Args:
        num_last_epochs: Every epoch from ``max_epochs - num_last_epochs - 1`` on is synced.
        interval: Sync after every ``interval``-th epoch before that.
    """

    def __init__(self, num_last_epochs: int = 15, interval: int = 1) -> None:
        self.num_last_epochs = num_last_epochs
        self.interval = interval

    def before_train_epoch(self, runner: Runner) -> None:
        if runner.epoch >= _switch_epoch(runner, self.num_last_epochs, "SyncNormHook"):
            self.interval = 1

    def after_train_epoch(self, runner: Runner) -> None:
        if (runner.epoch + 1) % self.interval != 0 or get_dist_info()[1] == 1:
            return
        model = unwrap_model(runner.model)
        states = norm_states(model)
        if not states:
            return
        world = dist.get_world_size()
        averaged = {}
        for key, value in states.items():
            # integer counters (num_batches_tracked) are averaged in float and cast back
            total = value.detach().clone().float()
            dist.all_reduce(total)
            averaged[key] = (total / world).to(value.dtype)
        model.load_state_dict(averaged, strict=False)
