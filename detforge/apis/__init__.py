"""High-level entry points: train a detector, test it over a loader, run it on images."""

from detforge.apis.inference import (
    async_inference_detector,
    inference_detector,
    init_detector,
    show_result_pyplot,
)
from detforge.apis.train import init_random_seed, set_random_seed, train_detector
from detforge.engine.testing import multi_gpu_test, single_gpu_test

__all__ = [
    "async_inference_detector",
    "inference_detector",
    "init_detector",
    "init_random_seed",
    "multi_gpu_test",
    "set_random_seed",
    "show_result_pyplot",
    "single_gpu_test",
    "train_detector",
]
