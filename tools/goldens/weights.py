"""Deterministic stand-in weights for golden tests of fixed-width components.

Backbones whose widths cannot shrink (Darknet-53, SSD's VGG) would need tens of MB of random
weights; instead their golden fixtures use weights computed from a closed formula, the same
on every machine and in both venvs (integer hashing in NumPy, no RNG): the generator script
loads them into MMDetection's module and the test into detforge's. Only NumPy and PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = ["formula_state_dict"]

_PERIOD = 1_000_003  # a prime, so the repeats never line up with (power-of-two) channel counts


def _splitmix(n: int) -> np.ndarray:
    """``n`` values in [0, 1) from SplitMix64 of 0..n-1 (exact integer maths, no RNG)."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


_POOL = _splitmix(_PERIOD)


def _uniform(n: int, stream: int) -> np.ndarray:
    """``n`` values in [0, 1): the pool read cyclically from an offset set by ``stream``."""
    start = (stream * 104_729) % _PERIOD
    return np.tile(_POOL, (start + n) // _PERIOD + 1)[start : start + n]


def formula_state_dict(layout: Iterable[tuple[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
    """Weights for every ``(key, shape)`` of a state-dict layout, in order.

    Conv/linear weights are uniform with variance ``1 / fan_in`` (He's ``2 / fan_in`` lets
    Darknet-53's 23 residual blocks grow the maps to 1e5); norm and L2-norm weights
    lie in [0.9, 1.1], biases and running means in [-0.1, 0.1], running variances in
    [0.5, 1.5]; ``num_batches_tracked`` is 0.

    Example:
        >>> sd = formula_state_dict([('conv.weight', [4, 2, 3, 3]), ('bn.running_var', [4])])
        >>> sd['conv.weight'].shape, bool(sd['bn.running_var'].min() >= 0.5)
        (torch.Size([4, 2, 3, 3]), True)
    """
    out: dict[str, torch.Tensor] = {}
    for stream, (key, shape) in enumerate(layout):
        shape = tuple(int(s) for s in shape)
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        u = _uniform(math.prod(shape), stream)
        if key.endswith("running_var"):
            values = 0.5 + u
        elif key.endswith(("running_mean", "bias")):
            values = 0.2 * u - 0.1
        elif len(shape) == 1:
            values = 0.9 + 0.2 * u
        else:
            fan_in = math.prod(shape[1:])
            values = (2 * u - 1) * math.sqrt(3.0 / fan_in)
        out[key] = torch.from_numpy(values.reshape(shape)).to(torch.float32)
    return out
