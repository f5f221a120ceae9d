"""``EmbeddingRPNHead``: Sparse R-CNN's learned proposals (MMDetection v2.28).

It reads nothing from the features: ``init_proposal_bboxes`` (an ``nn.Embedding`` of
``num_proposals`` normalised ``cx, cy, w, h``, initialised to the whole image) become corner
boxes scaled by each image's ``img_shape`` ``(w, h, w, h)``, and ``init_proposal_features``
are the initial object features, the same for every image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.registry import MODELS, Cfg
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox_cxcywh_to_xyxy

__all__ = ["EmbeddingRPNHead", "imgs_whwh"]


def imgs_whwh(img_metas: Sequence[ImgMeta], like: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 1, 4]``: each image's ``(w, h, w, h)`` from ``img_shape``.

    Example:
        >>> imgs_whwh([dict(img_shape=(20, 30, 3))], torch.zeros(1)).tolist()
        [[[30.0, 20.0, 30.0, 20.0]]]
    """
    sizes = [[meta["img_shape"][1], meta["img_shape"][0]] * 2 for meta in img_metas]
    return like.new_tensor(sizes).view(len(img_metas), 1, 4)


@MODELS.register_module()
class EmbeddingRPNHead(nn.Module):
    """Learned proposal boxes and features (``mmdet.models.dense_heads.EmbeddingRPNHead``).

    Args:
        num_proposals: Proposals per image.
        proposal_feature_channel: Channels of the proposal (object) features.
        train_cfg: Must be ``None`` (the detector's ``train_cfg.rpn``; nothing to set).
        test_cfg: Must be ``None`` (the detector's ``test_cfg.rpn``).
        init_cfg: Must be ``None`` (the head initialises itself, as in v2).

    Example:
        >>> head = EmbeddingRPNHead(num_proposals=3, proposal_feature_channel=8)
        >>> head.init_weights()
        >>> boxes, feats, whwh = head.simple_test_rpn([torch.zeros(2, 8, 4, 4)],
        ...                                           [dict(img_shape=(20, 30, 3))] * 2)
        >>> boxes[0, 0].tolist(), tuple(feats.shape), tuple(whwh.shape)
        ([0.0, 0.0, 30.0, 20.0], (2, 3, 8), (2, 1, 4))
    """

    def __init__(
        self,
        num_proposals: int = 100,
        proposal_feature_channel: int = 256,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        for name, value in (("train_cfg", train_cfg), ("test_cfg", test_cfg)):
            if value:
                raise InvalidArgumentError(
                    f"EmbeddingRPNHead has no {name} settings (set model.{name}.rpn=None), "
                    f"got {value!r}"
                )
        if init_cfg is not None:
            raise InvalidArgumentError(
                "EmbeddingRPNHead: init_cfg must be None (it initialises itself)"
            )
        self.num_proposals = num_proposals
        self.proposal_feature_channel = proposal_feature_channel
        self.init_proposal_bboxes = nn.Embedding(num_proposals, 4)
        self.init_proposal_features = nn.Embedding(num_proposals, proposal_feature_channel)

    def init_weights(self) -> None:
        """Every proposal starts as the whole image: ``cx = cy = 0.5``, ``w = h = 1``."""
        nn.init.constant_(self.init_proposal_bboxes.weight[:, :2], 0.5)
        nn.init.constant_(self.init_proposal_bboxes.weight[:, 2:], 1.0)

    def _decode_init_proposals(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        whwh = imgs_whwh(img_metas, feats[0])
        proposals = bbox_cxcywh_to_xyxy(self.init_proposal_bboxes.weight) * whwh
        features = self.init_proposal_features.weight
        features = features[None].expand(len(feats[0]), *features.shape)
        return proposals, features, whwh

    def forward_train(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``proposals [N, P, 4]``, ``features [N, P, C]`` and ``imgs_whwh [N, 1, 4]``."""
        return self._decode_init_proposals(feats, img_metas)

    def simple_test_rpn(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`forward_train` (the proposals do not depend on the image content)."""
        return self._decode_init_proposals(feats, img_metas)

    forward_dummy = simple_test_rpn
