"""``CornerNet``: HourglassNet → :class:`CornerHead` (or :class:`CentripetalHead`), with v2's
flip test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detforge.models.detectors.single_stage import SingleStageDetector
from detforge.models.test_time_aug import require_flip_pairs
from detforge.registry import MODELS
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result, bbox_mapping_back

__all__ = ["CornerNet"]


@MODELS.register_module()
class CornerNet(SingleStageDetector):
    """CornerNet (and CentripetalNet); the arguments of :class:`SingleStageDetector`.

    Test-time augmentation works on (view, flipped view) pairs, as in v2: each pair runs as one
    batch, every view is decoded on its own (no rescale, no NMS), its boxes are mapped back to
    the original image (``bbox_mapping_back`` with the view's ``img_shape``, ``scale_factor``
    and ``flip``), and all views' boxes go through one class-wise NMS. The result is always in
    the original image's frame (v2 ignores ``rescale`` here).
    """

    def aug_test(
        self,
        imgs: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[list[Any]]:
        """One image's per-class arrays from flipped pairs of views (see the class docstring).

        Raises:
            ValueError: neither of the first two views is flipped.
        """
        require_flip_pairs(imgs, img_metas, "CornerNet")
        head: Any = self.bbox_head
        boxes, labels = [], []
        for ind in range(0, len(imgs) - 1, 2):
            outs = head(self.extract_feat(torch.cat([imgs[ind], imgs[ind + 1]])))
            pair_metas = [img_metas[ind], img_metas[ind + 1]]
            for (dets, det_labels), metas in zip(
                head.get_bboxes(*outs, pair_metas, False, False), pair_metas, strict=True
            ):
                meta = metas[0]
                back = bbox_mapping_back(
                    dets[:, :4],
                    meta["img_shape"],
                    meta["scale_factor"],
                    meta["flip"],
                    meta.get("flip_direction") or "horizontal",
                )
                boxes.append(torch.cat([back, dets[:, -1:]], dim=-1))
                labels.append(det_labels)
        det_bboxes, det_labels = torch.cat(boxes), torch.cat(labels)
        if det_bboxes.shape[0] > 0:
            det_bboxes, det_labels = head.bboxes_nms(det_bboxes, det_labels)
        return [bbox2result(det_bboxes, det_labels, head.num_classes)]
