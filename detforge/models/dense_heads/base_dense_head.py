"""``BaseDenseHead``: the abstract base of every dense head (v2's ``BaseDenseHead`` and
``BBoxTestMixin``).

A dense head predicts, on every feature level, a score map and a box map over a grid of
priors (anchors or points). The base class owns what all of them share:

- the constructor state: ``num_classes``, the classification and box losses (their
  ``use_sigmoid`` decides ``cls_out_channels``: ``num_classes`` with sigmoid scores, one more
  for the softmax background), the box coder, ``train_cfg``/``test_cfg`` and ``init_cfg``;
- the v2 entry points ``forward_train`` (losses, and proposals with ``proposal_cfg``),
  ``simple_test``/``simple_test_bboxes``, ``aug_test`` and ``get_bboxes``;
- the test-time post-processing, numerically v2's: per level the ``nms_pre`` best (prior,
  class) pairs above ``score_thr``, decoded by the box coder (clipped to ``img_shape``; the
  hooks ``_flat_bbox_pred`` and ``_decode_bboxes`` serve heads whose boxes need more),
  optionally rescaled and multiplied by the sigmoid of the score factors (centerness), then
  class-wise NMS keeps ``max_per_img``. Zero-size boxes are kept: v2's dense heads filter by
  ``min_bbox_size`` only in the RPN;
- the loss preamble: the feature-map sizes checked against the prior generator's levels, and
  v2's positive-count normaliser (averaged over the ranks, at least 1).

A subclass builds its layers in ``_init_layers``, sets ``prior_generator`` and implements
``forward`` and ``loss``. Per-level hooks (``forward_single``, ``loss_single``) take the level's
extras (a :class:`Scale`, the stride) after their first arguments, as in v2.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.test_time_aug import dense_aug_test
from detforge.models.utils import filter_scores_and_topk, select_single_mlvl
from detforge.ops import batched_nms
from detforge.registry import MODELS, TASK_UTILS, Cfg, build_module, check_cfg_keys, plain_cfg
from detforge.structures import ImgMeta
from detforge.utils.dist import reduce_mean

__all__ = ["GN32", "SIGMOID_BCE", "BaseDenseHead", "conv_tower", "prior_init_cfg"]

#: GroupNorm with 32 groups: the towers' norm of ATSS, FCOS, GFL and VFNet
GN32: Cfg = MappingProxyType(dict(type="GN", num_groups=32, requires_grad=True))
#: sigmoid cross-entropy: the centerness/objectness loss of several heads
SIGMOID_BCE: Cfg = MappingProxyType(
    dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0)
)

#: Per image ``(det_bboxes [n, 5], det_labels [n])``, or ``(bboxes, scores, labels)`` when
#: post-processing stops before NMS (``with_nms=False``).
Detections = tuple[torch.Tensor, ...]


def conv_tower(
    in_channels: int,
    feat_channels: int,
    num_convs: int,
    conv_cfg: Cfg | None = None,
    norm_cfg: Cfg | None = None,
    bias: bool | str = "auto",
    dcn_on_last_conv: bool = False,
) -> nn.Sequential:
    """``num_convs`` 3x3 :class:`ConvModule` s (conv, norm, ReLU) in sequence: a dense head's
    branch (none: the identity).

    The state_dict keys are v2's (``0.conv.weight``, ``0.gn.weight``, ...).

    Args:
        in_channels: Channels of the first conv's input.
        feat_channels: Channels of every conv's output.
        num_convs: Number of convs (v2's ``stacked_convs``).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        bias: Conv bias: ``'auto'`` (only without a norm layer) or a bool.
        dcn_on_last_conv: Make the last conv a modulated deformable conv (``DCNv2``).

    Example:
        >>> tower = conv_tower(8, 16, 2, norm_cfg=dict(type='GN', num_groups=4))
        >>> len(tower), tower[1].conv.in_channels, tower[1].conv.bias is None
        (2, 16, True)
        >>> tower(torch.zeros(1, 8, 5, 5)).shape
        torch.Size([1, 16, 5, 5])
    """
    convs = nn.Sequential()
    for i in range(num_convs):
        last = i == num_convs - 1
        convs.append(
            ConvModule(
                in_channels if i == 0 else feat_channels,
                feat_channels,
                3,
                stride=1,
                padding=1,
                conv_cfg=dict(type="DCNv2") if dcn_on_last_conv and last else conv_cfg,
                norm_cfg=norm_cfg,
                bias=bias,
            )
        )
    return convs


def prior_init_cfg(cls_conv: str) -> Cfg:
    """v2's default ``init_cfg`` of a dense head: Normal(std=0.01) for every ``Conv2d`` and the
    0.01 prior probability as the bias of the score conv ``cls_conv``.

    Example:
        >>> prior_init_cfg('retina_cls')['override']['bias_prob']
        0.01
    """
    return dict(
        type="Normal",
        layer="Conv2d",
        std=0.01,
        override=dict(type="Normal", name=cls_conv, std=0.01, bias_prob=0.01),
    )


class BaseDenseHead(nn.Module, ABC):
    """The shared state and v2 entry points of dense heads (see the module docstring).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each input feature map.
        feat_channels: Channels of the head's hidden convs.
        loss_cls: Classification loss (config or module); its ``use_sigmoid`` selects sigmoid
            scores over a softmax with a background class. ``None`` for heads whose score
            losses have other names (CenterNet's heatmap loss): sigmoid scores.
        loss_bbox: Box regression loss (config or module); ``None`` for heads whose box losses
            have other names (YOLOv3's ``loss_xy``/``loss_wh``, CenterNet's).
        bbox_coder: Box coder (config or object, ``TASK_UTILS``); ``None`` for heads that
            decode boxes themselves (YOLOX, CenterNet).
        train_cfg: Training settings (assigner, sampler, ...), read by the subclass.
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img`` (``min_bbox_size``).
        init_cfg: Initialisation config, applied by :meth:`init_weights`.

    Raises:
        ValueError: ``num_classes`` leaves no output channel.
    """

    prior_generator: Any  #: grid_priors / valid_flags / num_levels / strides; set by subclasses
    #: the keys of ``train_cfg`` and ``test_cfg`` the head reads; anything else is a config error
    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"assigner", "sampler", "allowed_border", "pos_weight", "debug"}
    )
    TEST_CFG_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"nms_pre", "min_bbox_size", "score_thr", "nms", "max_per_img"}
    )

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        feat_channels: int,
        loss_cls: Cfg | nn.Module | None,
        loss_bbox: Cfg | nn.Module | None,
        bbox_coder: Cfg | object | None,
        train_cfg: Cfg | None,
        test_cfg: Cfg | None,
        init_cfg: Any,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.loss_cls: Any = None if loss_cls is None else build_module(loss_cls, MODELS)
        self.loss_bbox: Any = None if loss_bbox is None else build_module(loss_bbox, MODELS)
        self.bbox_coder: Any = None if bbox_coder is None else build_module(bbox_coder, TASK_UTILS)
        # decided from the built loss, so a class-typed or pre-built loss_cls behaves the same
        sigmoid = bool(getattr(self.loss_cls, "use_sigmoid", False))
        self.use_sigmoid_cls = loss_cls is None or sigmoid
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        if self.cls_out_channels <= 0:
            raise InvalidArgumentError(
                f"{type(self).__name__}: num_classes={num_classes} is too small"
            )
        check_cfg_keys(train_cfg, self.TRAIN_CFG_KEYS, "train_cfg", self)
        check_cfg_keys(test_cfg, self.TEST_CFG_KEYS, "test_cfg", self)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.init_cfg = plain_cfg(init_cfg)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    # ------------------------------------------------------------- abstract
    @abstractmethod
    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: score maps, box maps (and score factors, for heads that have them)."""

    @abstractmethod
    def loss(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``loss(*forward_outputs, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore=None)``:
        the losses by their v2 names (RPN heads take no ``gt_labels``)."""

    # ------------------------------------------------------------- training
    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[ImgMeta],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None = None,
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
        proposal_cfg: Cfg | None = None,
    ) -> Any:
        """Losses, and with ``proposal_cfg`` also ``(losses, proposals per image)`` (v2)."""
        outs = self(x)
        # v2's protocol: the head's outputs come first, however many there are
        get_bboxes: Callable[..., list[Any]] = self.get_bboxes
        if gt_labels is None:
            losses = self.loss(*outs, gt_bboxes, img_metas, gt_bboxes_ignore=gt_bboxes_ignore)
        else:
            losses = self.loss(
                *outs, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore=gt_bboxes_ignore
            )
        if proposal_cfg is None:
            return losses
        return losses, get_bboxes(*outs, img_metas=img_metas, cfg=proposal_cfg)

    def _featmap_sizes(self, cls_scores: Sequence[torch.Tensor]) -> list[torch.Size]:
        """The ``(h, w)`` of each level's score map, checked against the prior levels."""
        sizes = [score.shape[-2:] for score in cls_scores]
        if len(sizes) != self.prior_generator.num_levels:
            raise InvalidArgumentError(
                f"{type(self).__name__}: {len(sizes)} feature levels for "
                f"{self.prior_generator.num_levels} prior levels"
            )
        return sizes

    @staticmethod
    def _num_pos_avg(num_pos: float | torch.Tensor, device: Any) -> float:
        """v2's positive-count normaliser: the mean over the ranks, at least 1."""
        value = torch.as_tensor(num_pos, dtype=torch.float, device=device)
        return max(float(reduce_mean(value)), 1.0)

    # ------------------------------------------------------------ inference
    def simple_test(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta], rescale: bool = False
    ) -> list[Detections]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` (v2's ``simple_test``)."""
        return self.simple_test_bboxes(feats, img_metas, rescale=rescale)

    def simple_test_bboxes(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[ImgMeta], rescale: bool = False
    ) -> list[Detections]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])``."""
        get_bboxes: Callable[..., list[Detections]] = self.get_bboxes  # outputs first (v2)
        return get_bboxes(*self(feats), img_metas=img_metas, rescale=rescale)

    def aug_test(
        self,
        feats: Sequence[Sequence[torch.Tensor]],
        img_metas: Sequence[Sequence[ImgMeta]],
        rescale: bool = False,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Several views of one image: every view's boxes pooled, then one NMS (v2)."""
        return dense_aug_test(self, feats, img_metas, rescale)

    def get_bboxes(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        score_factors: Sequence[torch.Tensor] | None = None,
        img_metas: Sequence[ImgMeta] | None = None,
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image the result of :meth:`_get_bboxes_single` on that image's maps and the
        priors of ``prior_generator.grid_priors``.

        Raises:
            ValueError: ``img_metas`` is missing or the level counts differ.
        """
        name = type(self).__name__
        if img_metas is None:
            raise InvalidArgumentError(f"{name}.get_bboxes needs img_metas")
        if len(cls_scores) != len(bbox_preds):
            raise InvalidArgumentError(
                f"{name}: {len(cls_scores)} score levels for {len(bbox_preds)} box levels"
            )
        if score_factors is not None and len(score_factors) != len(cls_scores):
            raise InvalidArgumentError(
                f"{name}: {len(score_factors)} score-factor levels for {len(cls_scores)} score "
                "levels"
            )
        num_levels = len(cls_scores)
        priors = self.prior_generator.grid_priors(
            [score.shape[-2:] for score in cls_scores],
            dtype=cls_scores[0].dtype,
            device=cls_scores[0].device,
        )
        results = []
        for img_id, meta in enumerate(img_metas):
            factors: Sequence[torch.Tensor | None] = (
                select_single_mlvl(score_factors, img_id)
                if score_factors is not None
                else [None] * num_levels
            )
            results.append(
                self._get_bboxes_single(
                    select_single_mlvl(cls_scores, img_id),
                    select_single_mlvl(bbox_preds, img_id),
                    factors,
                    priors,
                    meta,
                    cfg,
                    rescale,
                    with_nms,
                )
            )
        return results

    def _test_cfg(self, cfg: Cfg | None) -> Cfg:
        """The post-processing settings: ``cfg`` (e.g. the RPN's ``rpn_proposal``), checked,
        or the head's ``test_cfg``."""
        if cfg is None:
            cfg = self.test_cfg
        else:
            check_cfg_keys(cfg, self.TEST_CFG_KEYS, "test_cfg", self)
        if cfg is None:
            raise InvalidArgumentError(f"{type(self).__name__}: no test_cfg for post-processing")
        return cfg

    def _get_bboxes_single(
        self,
        cls_score_list: Sequence[torch.Tensor],
        bbox_pred_list: Sequence[torch.Tensor],
        score_factor_list: Sequence[torch.Tensor | None],
        mlvl_priors: Sequence[torch.Tensor],
        img_meta: ImgMeta,
        cfg: Cfg | None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> Any:
        """One image's detections (see the module docstring): ``(det_bboxes [n, 5],
        det_labels [n])``, or ``(bboxes, scores, labels)`` without NMS."""
        cfg = self._test_cfg(cfg)
        img_shape = img_meta["img_shape"]
        with_factors = score_factor_list[0] is not None
        nms_pre = cfg.get("nms_pre", -1)
        mlvl_bboxes, mlvl_scores, mlvl_labels, mlvl_factors = [], [], [], []
        for level, (cls_score, bbox_pred, factor, priors) in enumerate(
            zip(cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, strict=True)
        ):
            if cls_score.shape[-2:] != bbox_pred.shape[-2:]:
                raise InvalidArgumentError(
                    f"{type(self).__name__}: score map {tuple(cls_score.shape)} and box map "
                    f"{tuple(bbox_pred.shape)} differ in size"
                )
            bbox_pred = self._flat_bbox_pred(bbox_pred, level)
            cls_score = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            scores = cls_score.sigmoid() if self.use_sigmoid_cls else cls_score.softmax(-1)[:, :-1]
            scores, labels, keep, filtered = filter_scores_and_topk(
                scores, cfg["score_thr"], nms_pre, dict(bbox_pred=bbox_pred, priors=priors)
            )
            assert filtered is not None
            boxes = self._decode_bboxes(filtered["priors"], filtered["bbox_pred"], img_shape)
            mlvl_bboxes.append(boxes)
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
            if factor is not None:
                mlvl_factors.append(factor.permute(1, 2, 0).reshape(-1).sigmoid()[keep])
        return self._bbox_post_process(
            mlvl_scores,
            mlvl_labels,
            mlvl_bboxes,
            img_meta["scale_factor"],
            cfg,
            rescale=rescale,
            with_nms=with_nms,
            mlvl_score_factors=mlvl_factors if with_factors else None,
        )

    def _flat_bbox_pred(self, bbox_pred: torch.Tensor, level: int) -> torch.Tensor:
        """One image's box map of ``level`` ``[A*4, H, W]`` as rows ``[H*W*A, 4]``."""
        return bbox_pred.permute(1, 2, 0).reshape(-1, 4)

    def _decode_bboxes(
        self, priors: torch.Tensor, bbox_pred: torch.Tensor, max_shape: Any
    ) -> torch.Tensor:
        """Boxes ``[n, 4]`` from the kept priors and predictions, clipped to ``max_shape``."""
        boxes: torch.Tensor = self.bbox_coder.decode(priors, bbox_pred, max_shape=max_shape)
        return boxes

    def _bbox_post_process(
        self,
        mlvl_scores: Sequence[torch.Tensor],
        mlvl_labels: Sequence[torch.Tensor],
        mlvl_bboxes: Sequence[torch.Tensor],
        scale_factor: Any,
        cfg: Mapping[str, Any],
        rescale: bool = False,
        with_nms: bool = True,
        mlvl_score_factors: Sequence[torch.Tensor] | None = None,
    ) -> Detections:
        """Concatenate the levels, rescale, apply score factors, then class-wise NMS (v2)."""
        bboxes = torch.cat(list(mlvl_bboxes))
        if rescale:
            bboxes = bboxes / bboxes.new_tensor(scale_factor)
        scores = torch.cat(list(mlvl_scores))
        labels = torch.cat(list(mlvl_labels))
        if mlvl_score_factors is not None:
            scores = scores * torch.cat(list(mlvl_score_factors))
        if not with_nms:
            return bboxes, scores, labels
        if bboxes.numel() == 0:
            return torch.cat([bboxes, scores[:, None]], -1), labels
        dets, keep = batched_nms(bboxes, scores, labels, cfg["nms"])
        max_per_img = cfg["max_per_img"]
        return dets[:max_per_img], labels[keep][:max_per_img]
