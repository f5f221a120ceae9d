"""``MaskRCNN``: Faster R-CNN with a mask branch in its RoI head (v2 ``MaskRCNN``)."""

from __future__ import annotations

from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS

__all__ = ["MaskRCNN"]


@MODELS.register_module()
class MaskRCNN(TwoStageDetector):
    """Mask R-CNN; the arguments of :class:`TwoStageDetector`.

    ``roi_head`` carries a ``mask_roi_extractor`` and a ``mask_head``; training needs
    ``gt_masks`` and ``train_cfg.rcnn.mask_size``, testing ``test_cfg.rcnn.mask_thr_binary``.
    ``simple_test`` returns per image ``(bbox_results, segm_results)``: a list over classes of
    ``ndarray[n, 5]`` and a list over classes of ``n`` bool masks ``ndarray[H, W]``
    (at ``ori_shape`` with ``rescale=True``).
    """
