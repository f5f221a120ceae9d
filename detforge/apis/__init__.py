"""High-level entry points: train a detector from a config, run it over a test loader."""

from detforge.apis.test import multi_gpu_test, single_gpu_test
from detforge.apis.train import init_random_seed, set_random_seed, train_detector

__all__ = [
    "init_random_seed",
    "multi_gpu_test",
    "set_random_seed",
    "single_gpu_test",
    "train_detector",
]
