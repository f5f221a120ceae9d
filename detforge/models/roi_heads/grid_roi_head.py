"""``GridRoIHead``: Grid R-CNN's RoI head (v2).

The box head only classifies (``with_reg=False``); the boxes come from the :class:`GridHead`:

- training: after the box losses, the positive RoIs are jittered (centre moved by up to
  ``0.15`` of the size, size scaled by ``1 +- 0.15``, uniformly, then clipped to
  ``[0, img_shape - 1]``), pooled by the ``grid_roi_extractor`` (14x14), at most
  ``max_num_grid`` of them drawn at random (``torch.randperm``), and ``loss_grid`` is added;
- testing: the box head's detections (NMS'ed, in the resized frame) are pooled again and
  moved to their grid points (:meth:`GridHead.get_bboxes`), then rescaled.

Test-time augmentation merges the box head's views as Faster R-CNN does, without the grid
refinement (v2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi

__all__ = ["GridRoIHead", "jitter_boxes"]

#: v2's hard-coded jitter of the positive RoIs
JITTER_AMPLITUDE = 0.15


def jitter_boxes(
    bboxes: torch.Tensor, img_shape: Sequence[int] | None, amplitude: float = JITTER_AMPLITUDE
) -> torch.Tensor:
    """Randomly moved and resized boxes (v2's ``GridRoIHead._random_jitter``, one image).

    Draws ``Tensor[N, 4]`` uniform offsets in ``[-amplitude, amplitude)`` from the global
    generator: centre += size * offsets[:, :2], size *= 1 + offsets[:, 2:]; clipped to
    ``[0, w - 1] x [0, h - 1]`` of ``img_shape``.

    Example:
        >>> boxes = torch.tensor([[10., 10., 30., 50.]])
        >>> out = jitter_boxes(boxes, (100, 100, 3), amplitude=0.0)
        >>> out.tolist()
        [[10.0, 10.0, 30.0, 50.0]]
    """
    offsets = bboxes.new_empty(bboxes.shape[0], 4).uniform_(-amplitude, amplitude)
    cxcy = (bboxes[:, 2:4] + bboxes[:, :2]) / 2
    wh = (bboxes[:, 2:4] - bboxes[:, :2]).abs()
    new_cxcy = cxcy + wh * offsets[:, :2]
    new_wh = wh * (1 + offsets[:, 2:])
    out = torch.cat([new_cxcy - new_wh / 2, new_cxcy + new_wh / 2], dim=1)
    if img_shape is not None:
        out[:, 0::2] = out[:, 0::2].clamp(min=0, max=img_shape[1] - 1)
        out[:, 1::2] = out[:, 1::2].clamp(min=0, max=img_shape[0] - 1)
    return out


@MODELS.register_module()
class GridRoIHead(StandardRoIHead):
    """:class:`StandardRoIHead` with Grid R-CNN's point head (see the module docstring).

    Args:
        grid_roi_extractor: RoI extractor of the grid head (``None``: the box extractor).
        grid_head: The :class:`GridHead` config.
        **kwargs: :class:`StandardRoIHead`'s arguments (``train_cfg`` adds ``pos_radius``
            and ``max_num_grid``).

    Raises:
        ValueError: no ``grid_head``, or a mask head (v2's Grid R-CNN configs have none).
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = StandardRoIHead.TRAIN_CFG_KEYS | {
        "pos_radius",
        "max_num_grid",
    }

    def __init__(
        self, grid_roi_extractor: Cfg | None = None, grid_head: Cfg | None = None, **kwargs: Any
    ) -> None:
        if grid_head is None:
            raise InvalidArgumentError("GridRoIHead needs a grid_head")
        super().__init__(**kwargs)
        if self.with_mask:
            raise InvalidArgumentError("GridRoIHead: a mask head is not supported")
        self.share_roi_extractor = grid_roi_extractor is None
        self.grid_roi_extractor: Any = (
            self.bbox_roi_extractor
            if grid_roi_extractor is None
            else build_module(grid_roi_extractor, MODELS)
        )
        self.grid_head = build_module(grid_head, MODELS)

    def _grid_forward(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        feats = self.grid_roi_extractor(x[: self.grid_roi_extractor.num_inputs], rois)
        out: dict[str, torch.Tensor] = self.grid_head(feats)
        return out

    def forward_dummy(self, x: Sequence[torch.Tensor], proposals: torch.Tensor) -> tuple[Any, ...]:
        return (
            *super().forward_dummy(x, proposals),
            self._grid_forward(x, bbox2roi([proposals])[:100]),
        )

    def _bbox_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """The box losses plus ``loss_grid`` on the jittered positives."""
        results = super()._bbox_forward_train(x, sampling_results, gt_bboxes, gt_labels, img_metas)
        pos_bboxes = [
            jitter_boxes(res.pos_bboxes, meta.get("img_shape"))
            for res, meta in zip(sampling_results, img_metas, strict=True)
        ]
        pos_rois = bbox2roi(pos_bboxes)
        if pos_rois.shape[0] == 0:  # GN cannot run on no RoIs
            return results
        assert self.train_cfg is not None
        feats = self.grid_roi_extractor(x[: self.grid_roi_extractor.num_inputs], pos_rois)
        keep = torch.randperm(feats.shape[0])[: int(self.train_cfg.get("max_num_grid", 192))]
        grid_pred = self.grid_head(feats[keep])
        targets = self.grid_head.get_targets(
            pos_bboxes, [res.pos_gt_bboxes for res in sampling_results], self.train_cfg
        )
        results["loss_bbox"].update(self.grid_head.loss(grid_pred, targets[keep]))
        return results

    def simple_test_bboxes(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor],
        rcnn_test_cfg: Cfg | None,
        rescale: bool = False,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The box head's detections moved to their grid points (then rescaled)."""
        det_bboxes, det_labels = super().simple_test_bboxes(
            x, img_metas, proposals, rcnn_test_cfg, rescale=False
        )
        rois = bbox2roi([b[:, :4] for b in det_bboxes])
        if rois.shape[0] > 0:
            fused = self._grid_forward(x, rois)["fused"].split([len(b) for b in det_bboxes], 0)
            det_bboxes = [
                self.grid_head.get_bboxes(b, f, meta) if len(b) else b
                for b, f, meta in zip(det_bboxes, fused, img_metas, strict=True)
            ]
        if rescale:
            det_bboxes = [
                torch.cat([b[:, :4] / b.new_tensor(meta["scale_factor"]), b[:, 4:]], dim=1)
                for b, meta in zip(det_bboxes, img_metas, strict=True)
            ]
        return det_bboxes, det_labels
