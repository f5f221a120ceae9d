"""``DoubleHeadRoIHead``: Double-Head R-CNN's RoI head (v2).

Each RoI is pooled twice from the same level: as it is for the classification branch, and
enlarged about its centre by ``reg_roi_scale_factor`` for the regression branch (the level
is chosen from the original RoI). The box head (:class:`DoubleConvFCBBoxHead`) takes both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.models.roi_heads.standard_roi_head import StandardRoIHead
from detforge.registry import MODELS

__all__ = ["DoubleHeadRoIHead"]


@MODELS.register_module()
class DoubleHeadRoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` whose box head sees the RoIs twice (see the module docstring).

    Args:
        reg_roi_scale_factor: Enlargement of the regression branch's RoIs (1.3 in v2's
            config).
        **kwargs: :class:`StandardRoIHead`'s arguments.
    """

    def __init__(self, reg_roi_scale_factor: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reg_roi_scale_factor = reg_roi_scale_factor

    def _bbox_forward(self, x: Sequence[torch.Tensor], rois: torch.Tensor) -> dict[str, Any]:
        feats = x[: self.bbox_roi_extractor.num_inputs]
        cls_feats = self.bbox_roi_extractor(feats, rois)
        reg_feats = self.bbox_roi_extractor(feats, rois, roi_scale_factor=self.reg_roi_scale_factor)
        cls_score, bbox_pred = self.bbox_head(cls_feats, reg_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=cls_feats)
