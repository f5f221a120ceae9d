"""Box samplers, registered in ``TASK_UTILS``."""

from detforge.models.task_modules.samplers.balanced_samplers import (
    CombinedSampler,
    InstanceBalancedPosSampler,
    IoUBalancedNegSampler,
)
from detforge.models.task_modules.samplers.base_sampler import BaseSampler
from detforge.models.task_modules.samplers.ohem_sampler import HardMining, OHEMSampler
from detforge.models.task_modules.samplers.pseudo_sampler import PseudoSampler
from detforge.models.task_modules.samplers.random_sampler import RandomSampler
from detforge.models.task_modules.samplers.sampling_result import SamplingResult
from detforge.models.task_modules.samplers.score_hlr_sampler import ScoreHLRSampler

__all__ = [
    "BaseSampler",
    "CombinedSampler",
    "HardMining",
    "InstanceBalancedPosSampler",
    "IoUBalancedNegSampler",
    "OHEMSampler",
    "PseudoSampler",
    "RandomSampler",
    "SamplingResult",
    "ScoreHLRSampler",
]
