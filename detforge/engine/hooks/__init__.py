"""Runner hooks with MMCV 1.x / MMDetection v2 names, registered in ``HOOKS``.

A hook's methods receive the runner; :class:`Runner` (re-exported from
:mod:`detforge.engine.protocols`) types what they may use of it.
"""

from detforge.engine.hooks.base import STAGES, Hook, optimizers_of, policy_hook_name
from detforge.engine.hooks.checkpoint import CheckpointHook
from detforge.engine.hooks.eval_hook import DistEvalHook, EvalHook
from detforge.engine.hooks.logger import IterTimerHook, LogBuffer, LoggerHook, TextLoggerHook
from detforge.engine.hooks.lr_updater import LrUpdaterHook
from detforge.engine.hooks.misc import (
    CheckInvalidLossHook,
    DistSamplerSeedHook,
    EMAHook,
    ExpMomentumEMAHook,
    InvalidLossError,
    NumClassCheckHook,
    SetEpochInfoHook,
    register_default_checks,
)
from detforge.engine.hooks.momentum_updater import (
    CosineAnnealingMomentumUpdaterHook,
    CyclicMomentumUpdaterHook,
    LinearAnnealingMomentumUpdaterHook,
    MomentumUpdaterHook,
    OneCycleMomentumUpdaterHook,
    StepMomentumUpdaterHook,
    current_momentum,
)
from detforge.engine.hooks.optimizer import (
    Fp16OptimizerHook,
    GradientCumulativeOptimizerHook,
    OptimizerHook,
)
from detforge.engine.hooks.priority import Priority, get_priority
from detforge.engine.hooks.tensorboard import TensorboardLoggerHook
from detforge.engine.protocols import Runner

__all__ = [
    "STAGES",
    "CheckInvalidLossHook",
    "CheckpointHook",
    "CosineAnnealingMomentumUpdaterHook",
    "CyclicMomentumUpdaterHook",
    "DistEvalHook",
    "DistSamplerSeedHook",
    "EMAHook",
    "EvalHook",
    "ExpMomentumEMAHook",
    "Fp16OptimizerHook",
    "GradientCumulativeOptimizerHook",
    "Hook",
    "InvalidLossError",
    "IterTimerHook",
    "LinearAnnealingMomentumUpdaterHook",
    "LogBuffer",
    "LoggerHook",
    "LrUpdaterHook",
    "MomentumUpdaterHook",
    "NumClassCheckHook",
    "OneCycleMomentumUpdaterHook",
    "OptimizerHook",
    "Priority",
    "Runner",
    "SetEpochInfoHook",
    "StepMomentumUpdaterHook",
    "TensorboardLoggerHook",
    "TextLoggerHook",
    "current_momentum",
    "get_priority",
    "optimizers_of",
    "policy_hook_name",
    "register_default_checks",
]
