"""The ``'YOLOX'`` lr policy (MMDetection v2's ``YOLOXLrUpdaterHook``).

Iteration-based (``by_epoch=False`` in YOLOX's configs; ``progress`` is then the global
iteration), with ``w`` warmup iterations and ``L = num_last_epochs * iters_per_epoch``:

- warmup (``iter < w``): ``base_lr * warmup_ratio * ((iter + 1) / w) ** 2`` whatever the
  ``warmup`` type, scaled from the base lr, not the regular one;
- then ``annealing_cos(base_lr, target, (progress + 1 - w) / (length - w - L))``;
- from ``progress + 1 >= length - L`` on, the target lr (``base_lr * min_lr_ratio`` or
  ``min_lr``) for the last epochs.
"""

from __future__ import annotations

from typing import ClassVar

from detforge.engine.lr_policies import _max_iters, _MinLrSchedule, _target, annealing_cos
from detforge.errors import ConfigError
from detforge.registry import LR_SCHEDULES

__all__ = ["YOLOXLr"]


@LR_SCHEDULES.register_module(name="YOLOX")
class YOLOXLr(_MinLrSchedule):
    """YOLOX's quadratic warmup, cosine, then flat last epochs (see the module docstring).

    Example:
        >>> s = YOLOXLr(num_last_epochs=1, min_lr_ratio=0.05, by_epoch=False, warmup='exp',
        ...             warmup_iters=1, warmup_ratio=1, warmup_by_epoch=True)
        >>> s.get_warmup_lr(4, 0.01, iters_per_epoch=10)
        0.0025
        >>> [round(s.get_lr(0.01, iter=i, max_epochs=3, iters_per_epoch=10), 6) for i in (9, 19)]
        [0.01, 0.0005]
    """

    policy = "YOLOX"
    warmup_from_base_lr: ClassVar[bool] = True

    def __init__(
        self,
        *,
        num_last_epochs: int,
        min_lr: float | None = None,
        min_lr_ratio: float | None = None,
        by_epoch: bool = True,
        warmup: str | None = None,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.1,
        warmup_by_epoch: bool = False,
    ) -> None:
        super().__init__(
            min_lr=min_lr,
            min_lr_ratio=min_lr_ratio,
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_iters=warmup_iters,
            warmup_ratio=warmup_ratio,
            warmup_by_epoch=warmup_by_epoch,
        )
        self.num_last_epochs = num_last_epochs

    def get_warmup_lr(
        self, cur_iters: int, regular_lr: float, iters_per_epoch: int | None = None
    ) -> float:
        """``regular_lr`` (here: the base lr) times ``warmup_ratio * ((cur + 1) / w) ** 2``."""
        n = self.num_warmup_iters(iters_per_epoch)
        return regular_lr * self.warmup_ratio * ((cur_iters + 1) / float(n)) ** 2

    def get_lr(
        self,
        base_lr: float,
        epoch: int = 0,
        iter: int = 0,
        max_epochs: int | None = None,
        max_iters: int | None = None,
        iters_per_epoch: int | None = None,
    ) -> float:
        if iters_per_epoch is None:
            raise ConfigError("lr policy 'YOLOX' needs the number of iterations per epoch")
        length = self._length(max_epochs, _max_iters(max_epochs, max_iters, iters_per_epoch))
        last = iters_per_epoch * self.num_last_epochs
        progress = (epoch if self.by_epoch else iter) + 1
        target = _target(base_lr, self.min_lr, self.min_lr_ratio)
        if progress >= length - last:
            return target
        warm = self.num_warmup_iters(iters_per_epoch)
        return annealing_cos(base_lr, target, (progress - warm) / (length - warm - last))
