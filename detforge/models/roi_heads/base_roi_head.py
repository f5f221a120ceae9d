"""``BaseRoIHead``: the abstract base of second-stage heads (v2's ``BaseRoIHead``).

A RoI head takes the neck's features and one set of proposals per image. In training it
assigns and samples the proposals (:func:`assign_and_sample`), pools their features and
returns the losses of its box (and mask) heads; at test time it returns v2 results: per image
a list over classes of ``ndarray[n, 5]``, with a mask head ``(bbox_results, segm_results)``.

The base class owns the constructor checks shared by all of them, the ``train_cfg``/
``test_cfg`` keys (:attr:`BaseRoIHead.TRAIN_CFG_KEYS`), ``init_weights`` and ``simple_test``
(boxes from ``simple_test_bboxes``, masks from ``simple_test_mask``); a subclass builds its
heads and implements those two plus ``forward_train`` and ``aug_test``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import apply_init_cfg
from detforge.models.task_modules.samplers import HardMining, OHEMSampler
from detforge.registry import MODELS, Cfg, build_module, check_cfg_keys
from detforge.structures import ImgMeta
from detforge.structures.bbox import bbox2result, bbox2roi

__all__ = [
    "BaseRoIHead",
    "assign_and_sample",
    "detections_per_image",
    "empty_detections",
    "hard_mining",
    "positive_flags",
    "roi_results",
    "scale_factor_tensor",
]

BBoxForward = Callable[[Sequence[torch.Tensor], torch.Tensor], dict[str, Any]]


def scale_factor_tensor(scale_factor: Any, like: torch.Tensor) -> torch.Tensor:
    """An image's ``scale_factor`` (a number or ``(w, h, w, h)``) as ``float32 [4]`` on the
    device of ``like``.

    Example:
        >>> scale_factor_tensor(2, torch.zeros(1)).tolist()
        [2.0, 2.0, 2.0, 2.0]
    """
    if isinstance(scale_factor, int | float):
        scale_factor = [float(scale_factor)] * 4
    return like.new_tensor(np.asarray(scale_factor, dtype=np.float32))


def _hard_mining_losses(
    bbox_forward: BBoxForward,
    bbox_head: Any,
    feats: Sequence[torch.Tensor],
    bboxes: torch.Tensor,
    labels: torch.Tensor,
) -> dict[str, torch.Tensor]:
    rois = bbox2roi([bboxes])
    cls_score = bbox_forward(feats, rois)["cls_score"]
    losses: dict[str, torch.Tensor] = bbox_head.loss(
        cls_score,
        None,
        rois,
        labels,
        cls_score.new_ones(cls_score.size(0)),
        None,
        None,
        reduction_override="none",
    )
    return losses


def hard_mining(bbox_forward: BBoxForward, bbox_head: Any) -> HardMining:
    """OHEM's view of a box branch: per-RoI losses (``reduction='none'``, unit weights, no
    box targets) of ``bbox_forward(feats, rois)['cls_score']`` under ``bbox_head.loss``, and
    ``bbox_head.num_classes`` as the negatives' label (v2's ``OHEMSampler.hard_mining``)."""
    return HardMining(partial(_hard_mining_losses, bbox_forward, bbox_head), bbox_head.num_classes)


def assign_and_sample(
    assigner: Any,
    sampler: Any,
    x: Sequence[torch.Tensor],
    proposal_list: Sequence[torch.Tensor],
    gt_bboxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
    mining: HardMining | None = None,
) -> list[Any]:
    """Per image, the proposals assigned to the ground truths and sampled (v2).

    The sampler also gets the image's features (``feats``); an :class:`OHEMSampler` gets
    ``mining`` (the RoI head's :func:`hard_mining`) to rank candidates with.
    """
    ignores = list(gt_bboxes_ignore or [None] * len(proposal_list))
    extra = {"hard_mining": mining} if isinstance(sampler, OHEMSampler) else {}
    results = []
    for i, proposals in enumerate(proposal_list):
        assign = assigner.assign(proposals, gt_bboxes[i], ignores[i], gt_labels[i])
        results.append(
            sampler.sample(
                assign,
                proposals,
                gt_bboxes[i],
                gt_labels[i],
                feats=[lvl[i][None] for lvl in x],
                **extra,
            )
        )
    return results


def positive_flags(sampling_results: Sequence[Any], device: torch.device) -> torch.Tensor:
    """``Tensor[N]`` bool over a batch's sampled RoIs (``bbox2roi([res.bboxes ...])`` order):
    true for the positives, which come first within each image.

    Example:
        >>> from types import SimpleNamespace as R
        >>> res = R(pos_bboxes=torch.zeros(1, 4), neg_bboxes=torch.zeros(2, 4))
        >>> positive_flags([res, res], torch.device('cpu')).tolist()
        [True, False, False, True, False, False]
    """
    flags = []
    for res in sampling_results:
        flags.append(torch.ones(res.pos_bboxes.shape[0], dtype=torch.bool))
        flags.append(torch.zeros(res.neg_bboxes.shape[0], dtype=torch.bool))
    return torch.cat(flags).to(device)


def empty_detections(
    bbox_head: Any, like: torch.Tensor, rcnn_test_cfg: Cfg | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The detections of an image without proposals, shaped as v2 returns them.

    With a test config: ``det_bboxes [0, 5]`` and ``det_labels [0]``; without one (v2 then
    returns raw boxes and class scores): ``[0, 4]`` boxes and ``[0, num_classes + 1]`` scores.

    Example:
        >>> head = type("Head", (), {"num_classes": 3})()
        >>> [t.shape for t in empty_detections(head, torch.zeros(1), None)]
        [torch.Size([0, 4]), torch.Size([0, 4])]
    """
    if rcnn_test_cfg is None:
        fc_cls = getattr(bbox_head, "fc_cls", None)
        channels = fc_cls.out_features if fc_cls is not None else bbox_head.num_classes + 1
        return like.new_zeros(0, 4), like.new_zeros((0, channels))
    return like.new_zeros(0, 5), like.new_zeros((0,), dtype=torch.long)


def detections_per_image(
    bbox_head: Any,
    rois_per_img: Sequence[torch.Tensor],
    scores: Sequence[torch.Tensor],
    preds: Sequence[torch.Tensor | None],
    img_metas: Sequence[ImgMeta],
    rcnn_test_cfg: Cfg | None,
    rescale: bool,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``bbox_head.get_bboxes`` image by image (an image without RoIs gets empty results)."""
    det_bboxes, det_labels = [], []
    for i, meta in enumerate(img_metas):
        if rois_per_img[i].shape[0] == 0:
            bboxes, labels = empty_detections(bbox_head, rois_per_img[i], rcnn_test_cfg)
            det_bboxes.append(bboxes)
            det_labels.append(labels)
            continue
        bboxes, labels = bbox_head.get_bboxes(
            rois_per_img[i],
            scores[i],
            preds[i],
            meta["img_shape"],
            meta["scale_factor"],
            rescale=rescale,
            cfg=rcnn_test_cfg,
        )
        det_bboxes.append(bboxes)
        det_labels.append(labels)
    return det_bboxes, det_labels


def roi_results(
    det_bboxes: Sequence[torch.Tensor],
    det_labels: Sequence[torch.Tensor],
    num_classes: int,
    segm_results: Sequence[Any] | None = None,
) -> list[Any]:
    """v2 results of a batch: per image the per-class ``ndarray [n, 5]`` list, or
    ``(bbox_results, segm_results[i])`` when ``segm_results`` is given."""
    bbox_results = [
        bbox2result(boxes, labels, num_classes)
        for boxes, labels in zip(det_bboxes, det_labels, strict=True)
    ]
    if segm_results is None:
        return bbox_results
    return list(zip(bbox_results, segm_results, strict=True))


class BaseRoIHead(nn.Module, ABC):
    """Shared state and v2 entry points of RoI heads (see the module docstring).

    Args:
        train_cfg: The detector's ``train_cfg.rcnn`` (a subclass checks and uses it).
        test_cfg: ``score_thr``, ``nms``, ``max_per_img`` (+ ``mask_thr_binary``).
        init_cfg: Initialisation config, applied by :meth:`init_weights`.
        shared_head: Module run on the pooled RoI features before the box and mask heads
            (v2's C4 models: a ``ResLayer``), or ``None``.
        pretrained: Deprecated v2 argument; must be ``None``.
        has_mask_head: Whether a mask head is configured (a mask RoI extractor alone is an
            error).
        has_mask_roi_extractor: Whether a mask RoI extractor is configured.

    Raises:
        ValueError: ``pretrained`` is given, or a mask RoI extractor without a mask head.
    """

    #: the keys of an R-CNN stage's ``train_cfg`` (v2's ``train_cfg.rcnn``) and ``test_cfg``
    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"assigner", "sampler", "pos_weight", "debug", "mask_size"}
    )
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"score_thr", "nms", "max_per_img", "mask_thr_binary"}
    )
    mask_head: Any

    def __init__(
        self,
        *,
        test_cfg: Cfg | None,
        init_cfg: Any,
        shared_head: Cfg | nn.Module | None,
        pretrained: str | None,
        has_mask_head: bool,
        has_mask_roi_extractor: bool,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if pretrained is not None:
            raise InvalidArgumentError("roi_head.pretrained is deprecated; use init_cfg")
        if has_mask_roi_extractor and not has_mask_head:
            raise InvalidArgumentError(f"{name}: mask_roi_extractor is given without a mask_head")
        check_cfg_keys(test_cfg, self.TEST_CFG_KEYS, "test_cfg", self)
        self.test_cfg = test_cfg
        self.init_cfg = init_cfg
        self.shared_head: nn.Module | None = (
            None if shared_head is None else build_module(shared_head, MODELS)
        )

    def _check_train_cfg(self, cfg: Cfg | None, name: str = "train_cfg") -> None:
        check_cfg_keys(cfg, self.TRAIN_CFG_KEYS, name, self)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    @property
    def with_bbox(self) -> bool:
        return True

    @property
    def with_mask(self) -> bool:
        return self.mask_head is not None

    @property
    def with_shared_head(self) -> bool:
        return self.shared_head is not None

    def _shared(self, roi_feats: torch.Tensor) -> torch.Tensor:
        """``shared_head(roi_feats)``, or the features unchanged without a shared head."""
        if self.shared_head is None:
            return roi_feats
        out: torch.Tensor = self.shared_head(roi_feats)
        return out

    # ------------------------------------------------------------- abstract
    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Foreground classes of the (last) box head."""

    @abstractmethod
    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposal_list: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
        gt_bboxes_ignore: Sequence[torch.Tensor | None] | None = None,
        gt_masks: Any = None,
    ) -> dict[str, torch.Tensor]:
        """The losses of the batch by their v2 names."""

    @abstractmethod
    def simple_test_bboxes(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Sequence[torch.Tensor],
        rcnn_test_cfg: Cfg | None,
        rescale: bool = False,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image ``det_bboxes [n, 5]`` and ``det_labels [n]``."""

    @abstractmethod
    def simple_test_mask(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        det_bboxes: Sequence[torch.Tensor],
        det_labels: Sequence[torch.Tensor],
        rescale: bool = False,
    ) -> list[list[list[np.ndarray]]]:
        """Per image, per class, the bool masks of the detections."""

    @abstractmethod
    def aug_test(
        self,
        x: Sequence[Sequence[torch.Tensor]],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[Any]:
        """v2 results of one image seen through several test-time augmentations."""

    # ------------------------------------------------------------- v2 API
    def simple_test(
        self,
        x: Sequence[torch.Tensor],
        proposal_list: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        proposals: Any = None,
        rescale: bool = False,
    ) -> list[Any]:
        """v2 results: per image a list over classes of ``ndarray [n, 5]`` (in the original
        frame with ``rescale``); with a mask head, per image ``(bbox_results,
        segm_results)``."""
        det_bboxes, det_labels = self.simple_test_bboxes(
            x, img_metas, proposal_list, self.test_cfg, rescale=rescale
        )
        segm_results = None
        if self.with_mask:
            segm_results = self.simple_test_mask(x, img_metas, det_bboxes, det_labels, rescale)
        return roi_results(det_bboxes, det_labels, self.num_classes, segm_results)
