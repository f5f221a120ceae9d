"""``CenterNet``: backbone → CTResNetNeck → :class:`CenterNetHead`, with v2's flip test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.models.test_time_aug import flip_tensor, require_flip_pairs
from detforge.registry import MODELS
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result

__all__ = ["CenterNet"]


@MODELS.register_module()
class CenterNet(SingleStageDetector):
    """CenterNet (Objects as Points); the arguments of :class:`SingleStageDetector`.

    Test-time augmentation works on (view, flipped view) pairs, as in v2: the two heatmaps and
    size maps are averaged (the flipped one flipped back), the offsets are the unflipped
    view's, and each pair is decoded like a single view. The pairs' detections are pooled;
    NMS runs only when ``test_cfg`` has ``nms_cfg`` (with ``test_cfg.nms`` when given, as v2,
    else ``nms_cfg`` itself: v2 failed there) and keeps ``max_per_img``.
    """

    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = True,
    ) -> list[list[Any]]:
        """One image's per-class arrays from flipped pairs of views (see the class docstring).

        Raises:
            ValueError: neither of the first two views is flipped.
        """
        require_flip_pairs(imgs, img_metas, "CenterNet")
        head: Any = self.bbox_head
        boxes, labels = [], []
        for ind in range(0, len(imgs) - 1, 2):
            direction = str(img_metas[ind + 1][0]["flip_direction"])
            heatmaps, whs, offsets = head(self.extract_feat(torch.cat([imgs[ind], imgs[ind + 1]])))
            heatmap = (heatmaps[0][0:1] + flip_tensor(heatmaps[0][1:2], direction)) / 2
            wh = (whs[0][0:1] + flip_tensor(whs[0][1:2], direction)) / 2
            (det_bboxes, det_labels), *_ = head.get_bboxes(
                [heatmap], [wh], [offsets[0][0:1]], img_metas[ind], rescale=rescale
            )
            boxes.append(det_bboxes)
            labels.append(det_labels)
        det_bboxes, det_labels = torch.cat(boxes).contiguous(), torch.cat(labels).contiguous()
        cfg = head.test_cfg
        if cfg.get("nms_cfg") is not None:
            nms_cfg = cfg.get("nms", cfg["nms_cfg"])
            det_bboxes, det_labels = head.bboxes_nms(
                det_bboxes, det_labels, nms_cfg, cfg["max_per_img"]
            )
        return [bbox2result(det_bboxes, det_labels, head.num_classes)]
