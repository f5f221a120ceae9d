"""``PointRendRoIHead``: Mask R-CNN's RoI head with PointRend's point-based mask refinement
(v2).

The mask branch is a ``CoarseMaskHead`` (``7 x 7`` logits). In training a ``MaskPointHead``
also learns ``loss_point`` at ``train_cfg.rcnn.num_points`` points per positive RoI, chosen by
uncertainty with randomness (``oversample_ratio``, ``importance_sample_ratio``). At test time
the coarse logits are refined ``test_cfg.rcnn.subdivision_steps`` times: upsample bilinearly by
``scale_factor`` (``align_corners=False``), then replace the logits of the
``subdivision_num_points`` most uncertain cells by the point head's predictions (a step is
skipped, except the last, while ``subdivision_num_points >= scale_factor² * h * w`` of the
already upsampled mask, as in v2). Fine-grained point features are bilinear samples of the
mask extractor's input levels at the points (``point_sample``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from detforge.errors import InvalidArgumentError
from detforge.models.roi_heads.base_roi_head import BaseRoIHead
from detforge.models.roi_heads.standard_roi_head import StandardRoIHead
from detforge.ops import point_sample, rel_roi_point_to_rel_img_point
from detforge.registry import MODELS, Cfg, build_module
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2roi

__all__ = ["PointRendRoIHead"]


@MODELS.register_module()
class PointRendRoIHead(StandardRoIHead):
    """PointRend's RoI head (``mmdet.models.roi_heads.PointRendRoIHead``).

    Args:
        point_head: ``MaskPointHead`` config (required).
        **kwargs: :class:`StandardRoIHead`'s arguments (``mask_roi_extractor`` and a
            ``CoarseMaskHead`` ``mask_head`` required).

    Raises:
        ValueError: no ``point_head`` or no mask head.
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = BaseRoIHead.TRAIN_CFG_KEYS | {
        "num_points",
        "oversample_ratio",
        "importance_sample_ratio",
    }
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = BaseRoIHead.TEST_CFG_KEYS | {
        "subdivision_steps",
        "subdivision_num_points",
        "scale_factor",
    }

    def __init__(self, point_head: Cfg | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if point_head is None or not self.with_mask:
            raise InvalidArgumentError("PointRendRoIHead needs a mask_head and a point_head")
        self.point_head = build_module(point_head, MODELS)

    def _fine_grained_point_feats(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor, rel_roi_points: torch.Tensor
    ) -> torch.Tensor:
        """``Tensor[K, C_total, P]``: every mask-extractor level sampled at the RoIs' points
        (each RoI on its own image; the levels' channels concatenated)."""
        extractor = self.mask_roi_extractor
        levels = []
        for level in range(extractor.num_inputs):
            feats = x[level]
            scale = 1.0 / float(extractor.featmap_strides[level])
            size = (feats.shape[2], feats.shape[3])
            out = feats.new_zeros(rois.shape[0], feats.shape[1], rel_roi_points.shape[1])
            for b in range(feats.shape[0]):
                inds = rois[:, 0].long() == b
                if inds.any():
                    points = rel_roi_point_to_rel_img_point(
                        rois[inds], rel_roi_points[inds], size, scale
                    )
                    sampled = point_sample(feats[b : b + 1], points.unsqueeze(0))
                    out[inds] = sampled[0].transpose(0, 1)
            levels.append(out)
        return torch.cat(levels, dim=1)

    def _mask_forward_train(
        self,
        x: Sequence[torch.Tensor],
        sampling_results: Sequence[Any],
        bbox_feats: torch.Tensor,
        gt_masks: Sequence[Any],
        img_metas: Sequence[ImgMeta],
    ) -> dict[str, Any]:
        """``loss_mask`` of the coarse head and ``loss_point`` of the point head."""
        results = super()._mask_forward_train(x, sampling_results, bbox_feats, gt_masks, img_metas)
        assert self.train_cfg is not None
        mask_pred = results["mask_pred"]
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        points = self.point_head.get_roi_rel_points_train(mask_pred, pos_labels, self.train_cfg)
        rois = bbox2roi([res.pos_bboxes for res in sampling_results])
        point_pred = self.point_head(
            self._fine_grained_point_feats(x, rois, points), point_sample(mask_pred, points)
        )
        targets = self.point_head.get_targets(
            rois, points, sampling_results, gt_masks, self.train_cfg
        )
        results["loss_mask"].update(self.point_head.loss(point_pred, targets, pos_labels))
        return results

    def _test_mask_logits(
        self, x: Sequence[torch.Tensor], rois: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The coarse logits of each RoI's class refined by subdivision (module docstring):
        ``Tensor[K, 1, h, w]``.

        v2 refines every class channel and then pastes only the detected class; the other
        channels never reach a result, so only that one is refined here (the same values,
        without the ``num_classes``-fold work and memory).
        """
        cfg = self.test_cfg
        if cfg is None:
            raise RuntimeError("PointRendRoIHead: testing needs test_cfg (subdivision_steps...)")
        coarse = self._mask_forward(x, rois)["mask_pred"]
        rows = torch.arange(coarse.shape[0], device=coarse.device)
        own_class = (lambda t: t) if coarse.shape[1] == 1 else (lambda t: t[rows, labels][:, None])
        steps, factor = int(cfg["subdivision_steps"]), cfg["scale_factor"]
        refined = own_class(coarse)
        for step in range(steps):
            refined = F.interpolate(
                refined, scale_factor=factor, mode="bilinear", align_corners=False
            )
            num, _, height, width = refined.shape
            if cfg["subdivision_num_points"] >= factor**2 * height * width and step < steps - 1:
                continue
            indices, points = self.point_head.get_roi_rel_points_test(refined, labels, cfg)
            point_pred = self.point_head(
                self._fine_grained_point_feats(x, rois, points), point_sample(coarse, points)
            )
            flat = refined.reshape(num, 1, height * width)
            flat = flat.scatter(2, indices.unsqueeze(1), own_class(point_pred))
            refined = flat.view(num, 1, height, width)
        return refined
