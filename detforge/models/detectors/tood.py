"""``TOOD``: backbone → FPN → :class:`TOODHead` (MMDetection v2's single-stage subclass)."""

from __future__ import annotations

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS

__all__ = ["TOOD"]


@MODELS.register_module()
class TOOD(SingleStageDetector):
    """TOOD detector; the arguments of :class:`SingleStageDetector`.

    Its head switches from the ATSS to the task-aligned assignment at
    ``train_cfg.initial_epoch``; ``SetEpochInfoHook`` (in the v2 configs' ``custom_hooks``)
    tells it the epoch through :meth:`set_epoch`.
    """

    def set_epoch(self, epoch: int) -> None:
        """Tell the head the current (0-based) training epoch."""
        self.bbox_head.epoch = epoch
