"""``YOLOX``: CSPDarknet → YOLOXPAFPN → :class:`YOLOXHead`, with v2's multi-scale training.

v2 resizes whole training batches inside the detector: every ``random_size_interval``
iterations a new input size ``(m * s, m * int(s * W / H))`` is drawn with ``s`` uniform in
``random_size_range`` (inclusive) and ``m = size_multiplier`` (on rank 0, then broadcast), and
until the next draw every batch (and its boxes) is bilinearly resized from ``input_size`` to
it. The first ``random_size_interval`` iterations run at ``input_size``. Testing is unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS
from detforge.structures import ImgMeta
from detforge.utils.dist import get_dist_info

__all__ = ["YOLOX"]


@MODELS.register_module()
class YOLOX(SingleStageDetector):
    """YOLOX detector: :class:`SingleStageDetector`'s arguments plus the multi-scale training
    settings (see the module docstring).

    Args:
        input_size: ``(height, width)`` the training pipeline produces.
        size_multiplier: Multiple of the drawn sizes.
        random_size_range: Inclusive range of the drawn size, in multiples.
        random_size_interval: Iterations between two draws.
        **kwargs: :class:`SingleStageDetector`'s arguments.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (640, 640),
        size_multiplier: int = 32,
        random_size_range: Sequence[int] = (15, 25),
        random_size_interval: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(input_size) != 2 or len(random_size_range) != 2 or random_size_interval < 1:
            raise ValueError(
                f"YOLOX: input_size {input_size!r} and random_size_range {random_size_range!r} "
                f"must be pairs and random_size_interval ({random_size_interval}) positive"
            )
        self._default_input_size = (int(input_size[0]), int(input_size[1]))
        self._input_size = self._default_input_size
        self._random_size_range = (int(random_size_range[0]), int(random_size_range[1]))
        self._random_size_interval = random_size_interval
        self._size_multiplier = size_multiplier
        self._progress_in_iter = 0

    def forward_train(
        self,
        img: torch.Tensor,
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """The head's losses on the batch resized to the current input size."""
        img, gt_bboxes = self._preprocess(img, gt_bboxes)
        losses = super().forward_train(img, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore)
        if (self._progress_in_iter + 1) % self._random_size_interval == 0:
            self._input_size = self._random_resize(img.device)
        self._progress_in_iter += 1
        return losses

    def _preprocess(
        self, img: torch.Tensor, gt_bboxes: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        scale_y = self._input_size[0] / self._default_input_size[0]
        scale_x = self._input_size[1] / self._default_input_size[1]
        if scale_x == 1 and scale_y == 1:
            return img, list(gt_bboxes)
        img = F.interpolate(img, size=self._input_size, mode="bilinear", align_corners=False)
        scale = img.new_tensor([scale_x, scale_y, scale_x, scale_y])
        return img, [boxes * scale.to(boxes.dtype) for boxes in gt_bboxes]

    def _random_resize(self, device: torch.device) -> tuple[int, int]:
        rank, world_size = get_dist_info()
        size = torch.zeros(2, dtype=torch.long, device=device)
        if rank == 0:
            s = random.randint(*self._random_size_range)
            aspect = self._default_input_size[1] / self._default_input_size[0]
            size[0] = self._size_multiplier * s
            size[1] = self._size_multiplier * int(aspect * s)
        if world_size > 1:
            dist.barrier()
            dist.broadcast(size, 0)
        return int(size[0]), int(size[1])
