"""Inference speed over a test loader (v2's ``tools/analysis_tools/benchmark.py``).

Each image is timed from moving its batch to the device to the end of ``model(return_loss=False,
rescale=True, **data)`` (with ``torch.cuda.synchronize()`` on both sides on a GPU); the first
``num_warmup`` images are run but not timed. Progress and results print in v2's format::

    Done image [50 / 2000], fps: 21.3 img / s, times per image: 46.9 ms / img
    Overall fps: 21.4 img / s, times per image: 46.7 ms / img
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from detforge.datasets.collate import UNREADABLE_KEY
from detforge.utils.device import model_device, to_device
from detforge.utils.image import ImageLoadError

__all__ = ["SpeedResult", "format_repeats", "measure_inference_speed"]


@dataclass(frozen=True)
class SpeedResult:
    """One timed pass: ``fps`` images per second over ``num_timed`` images."""

    fps: float
    num_timed: int
    seconds: float

    @property
    def ms_per_img(self) -> float:
        """Milliseconds per image."""
        return 1000.0 / self.fps


def _test_inputs(data: dict[str, Any], device: torch.device) -> dict[str, Any]:
    for marker in data.get(UNREADABLE_KEY) or ():  # timing needs every image: stop as v2 did
        if marker is not None:
            raise ImageLoadError(marker.reason)
    batch = to_device(dict(data), device)
    if isinstance(batch.get("img"), torch.Tensor):  # one augmentation, not wrapped in a list
        batch = {k: [v] for k, v in batch.items()}
    return batch


def _line(prefix: str, fps: float) -> str:
    return f"{prefix}fps: {fps:.1f} img / s, times per image: {1000 / fps:.1f} ms / img"


def measure_inference_speed(
    model: nn.Module,
    data_loader: Iterable[dict[str, Any]],
    max_iter: int = 2000,
    log_interval: int = 50,
    num_warmup: int = 5,
    print_fn: Callable[[str], Any] = print,
    timer: Callable[[], float] = time.perf_counter,
) -> SpeedResult:
    """Time ``model`` on up to ``max_iter`` batches of ``data_loader`` (one image each).

    Args:
        model: A detector in v2's test API; inputs go to the device of its parameters.
        data_loader: A test loader with ``samples_per_gpu=1``.
        max_iter: Images to run (fewer if the loader ends first).
        log_interval: Print the running speed every this many images.
        num_warmup: Leading images that are run but not timed.
        print_fn: Where the v2 lines go.
        timer: The clock (seconds).

    Raises:
        ValueError: the loader had no image after the warm-up ones.

    Example:
        >>> class Echo(nn.Module):
        ...     def forward(self, img, return_loss=False, rescale=True): return img
        >>> ticks = iter(range(100))
        >>> r = measure_inference_speed(Echo(), [dict(img=[torch.zeros(1)])] * 10, max_iter=10,
        ...                             print_fn=lambda s: None, timer=lambda: next(ticks) / 10)
        >>> r.num_timed, round(r.fps, 3)  # 5 timed images, 0.1 s each
        (5, 10.0)
    """
    if max_iter <= 0 or log_interval <= 0:
        raise ValueError(f"max_iter and log_interval must be positive: {max_iter}, {log_interval}")
    model.eval()
    device = model_device(model)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    pure_inf_time = 0.0
    count = 0
    for i, data in enumerate(data_loader):
        if i >= max_iter:
            break
        sync()
        start = timer()
        with torch.no_grad():
            model(return_loss=False, rescale=True, **_test_inputs(data, device))
        sync()
        elapsed = timer() - start
        count = i + 1
        if i >= num_warmup:
            pure_inf_time += elapsed
            if (i + 1) % log_interval == 0 and pure_inf_time > 0:
                fps = (i + 1 - num_warmup) / pure_inf_time
                print_fn(_line(f"Done image [{i + 1:<3}/ {max_iter}], ", fps))
    timed = count - num_warmup
    if timed <= 0 or pure_inf_time <= 0:
        raise ValueError(
            f"benchmark: the loader gave {count} images, not more than the {num_warmup} "
            "warm-up ones; use a larger test set or --max-iter"
        )
    fps = timed / pure_inf_time
    print_fn(_line("Overall ", fps))
    return SpeedResult(fps=fps, num_timed=timed, seconds=pure_inf_time)


def format_repeats(fps_list: Sequence[float]) -> str:
    """v2's summary line of ``--repeat-num`` runs: each run's value, then the mean in brackets.

    Both lists are rounded to 0.1 per run, the milliseconds from the *unrounded* fps
    (``round(1000 / fps, 1)``, as v2), and each mean is taken over the rounded values.

    Example:
        >>> format_repeats([20.04, 22.0])  # 1000 / 20.04 = 49.90 ms, not 1000 / 20.0
        'Overall fps: [20.0, 22.0][21.0] img / s, times per image: [49.9, 45.5][47.7] ms / img'
    """
    fps = [round(v, 1) for v in fps_list]
    ms = [round(1000 / v, 1) for v in fps_list]
    return (
        f"Overall fps: {fps}[{sum(fps) / len(fps):.1f}] img / s, "
        f"times per image: {ms}[{sum(ms) / len(ms):.1f}] ms / img"
    )
