"""Training runtime pieces: distributed helpers, checkpoints, optimizers and LR schedules.

The runner, hooks and the train/test commands build on these (a later milestone).
"""

from detforge.engine.checkpoint_save import find_latest_checkpoint, save_checkpoint
from detforge.engine.lr import apply_lr, build_lr_schedule, init_base_lrs, lr_at
from detforge.engine.optim import auto_scale_lr, build_optimizer, clip_grads
from detforge.utils.checkpoint import load_checkpoint, read_checkpoint, resolve_checkpoint
from detforge.utils.dist import get_dist_info, sync_random_seed

__all__ = [
    "apply_lr",
    "auto_scale_lr",
    "build_lr_schedule",
    "build_optimizer",
    "clip_grads",
    "find_latest_checkpoint",
    "get_dist_info",
    "init_base_lrs",
    "load_checkpoint",
    "lr_at",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "sync_random_seed",
]
