"""``DETR`` and ``DeformableDETR``: backbone (→ neck) → a transformer head that needs the image
metas in its forward (MMDetection v2's detectors of the same names)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.registry import MODELS, Cfg

__all__ = ["DETR", "DeformableDETR", "query_head_dummy"]


def query_head_dummy(detector: SingleStageDetector, img: torch.Tensor) -> Any:
    """The head's raw outputs for ``img`` taken as whole images (FLOP counting, export)."""
    batch, _, height, width = img.shape
    metas = [
        dict(batch_input_shape=(height, width), img_shape=(height, width, 3)) for _ in range(batch)
    ]
    return detector.bbox_head(detector.extract_feat(img), metas)


@MODELS.register_module()
class DETR(SingleStageDetector):
    """DETR: backbone → :class:`DETRHead` (which holds the input projection), no neck (v2).

    Args:
        backbone: Backbone config or module.
        bbox_head: ``DETRHead`` config or module.
        train_cfg: ``assigner``.
        test_cfg: ``max_per_img``.
        pretrained: Deprecated; must be ``None``.
        init_cfg: Initialisation config.
    """

    def __init__(
        self,
        backbone: Cfg | nn.Module,
        bbox_head: Cfg | nn.Module,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(
            backbone=backbone,
            neck=None,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            pretrained=pretrained,
            init_cfg=init_cfg,
        )

    def forward_dummy(self, img: torch.Tensor) -> Any:
        return query_head_dummy(self, img)


@MODELS.register_module()
class DeformableDETR(SingleStageDetector):
    """Deformable DETR: backbone → neck (``ChannelMapper``) → ``DeformableDETRHead``; the
    arguments of :class:`SingleStageDetector`."""

    def forward_dummy(self, img: torch.Tensor) -> Any:
        return query_head_dummy(self, img)
