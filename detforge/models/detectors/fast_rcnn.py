"""``FastRCNN``: a two-stage detector without an RPN, run on precomputed proposals (v2).

The proposals come with the data: a dataset's ``proposal_file`` (a pickle list with one
``ndarray [n, 4 or 5]`` per image, e.g. what ``detforge test <rpn config> --out`` writes) and
``LoadProposals`` in the pipelines put them in ``results['proposals']``, which the train
pipeline collects as a tensor per image and the test pipeline as a list per augmentation.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from detforge.models.detectors.base import NeckCfg
from detforge.models.detectors.two_stage import TwoStageDetector
from detforge.registry import MODELS, Cfg

__all__ = ["FastRCNN"]


@MODELS.register_module()
class FastRCNN(TwoStageDetector):
    """Backbone, neck and RoI head on given proposals (the arguments of
    :class:`TwoStageDetector` without ``rpn_head``)."""

    def __init__(
        self,
        backbone: Cfg | nn.Module,
        roi_head: Cfg | nn.Module,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        neck: NeckCfg | None = None,
        pretrained: str | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            pretrained=pretrained,
            init_cfg=init_cfg,
        )

    def forward_test(self, imgs: Any, img_metas: Any, **kwargs: Any) -> Any:
        """As :meth:`BaseDetector.forward_test`, with ``proposals`` (a list over
        augmentations) required.

        Raises:
            ValueError: no proposals were given.
        """
        if kwargs.get("proposals") is None:
            raise ValueError(
                "FastRCNN needs proposals: give the dataset a proposal_file and put "
                "LoadProposals in the test pipeline (and 'proposals' in Collect)"
            )
        return super().forward_test(imgs, img_metas, **kwargs)
