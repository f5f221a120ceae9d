"""``SSDHead``: the SSD and SSDLite head (Liu et al. 2016), MMDetection v2.28 numerics.

Every level has its own score and box branch (``cls_convs[k]``/``reg_convs[k]``): a 3x3 conv
(SSD), or a 3x3 depthwise ConvModule then a 1x1 conv (SSDLite, ``use_depthwise``), optionally
after ``stacked_convs`` ConvModules. Scores are a softmax over ``num_classes + 1`` channels,
the background last.

Training: anchors are matched by the assigner (no sampling: ``PseudoSampler`` whatever the
config says). Per **image**, the classification loss is the cross-entropy of its positives
plus that of its ``neg_pos_ratio × num_pos`` hardest negatives (hard negative mining, at most
all its negatives); the box loss is the smooth L1 (``smoothl1_beta``) of its positives' deltas.
Both are divided by the batch's positive count (each image counting at least 1), and v2
returns one value per image. Post-processing is :class:`BaseDenseHead`'s softmax path.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.anchor_head import AnchorHead
from detforge.models.dense_heads.base_dense_head import BaseDenseHead
from detforge.models.layers import ConvModule, DepthwiseSeparableConvModule
from detforge.models.task_modules.samplers import PseudoSampler
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, Cfg, plain_cfg
from detforge.structures import ImgMeta

__all__ = ["AscendSSDHead", "SSDHead", "hard_negative_ce"]

# SSD300 COCO's (v2's SSDHead default says basesize_ratio_range=(0.1, 0.9), which v2's own
# SSDAnchorGenerator rejects at input_size 300)
_SSD300_ANCHORS: Cfg = MappingProxyType(
    dict(
        type="SSDAnchorGenerator",
        scale_major=False,
        input_size=300,
        strides=[8, 16, 32, 64, 100, 300],
        ratios=([2], [2, 3], [2, 3], [2, 3], [2], [2]),
        basesize_ratio_range=(0.15, 0.9),
    )
)
_XAVIER: Cfg = MappingProxyType(dict(type="Xavier", layer="Conv2d", distribution="uniform", bias=0))
_SOFTMAX_CE: Cfg = MappingProxyType(dict(type="CrossEntropyLoss", use_sigmoid=False))


def hard_negative_ce(
    ce: torch.Tensor, labels: torch.Tensor, num_classes: int, neg_pos_ratio: float
) -> torch.Tensor:
    """Sum of the positives' losses and of the ``neg_pos_ratio × num_pos`` largest negative ones.

    Args:
        ce: One image's weighted per-anchor cross-entropy ``[N]``.
        labels: Its labels ``[N]``: ``0 .. num_classes - 1`` positive, ``num_classes`` negative.
        num_classes: Foreground classes.
        neg_pos_ratio: Negatives kept per positive.

    Example:
        >>> ce = torch.tensor([1., 5., 2., 4., 3.])
        >>> hard_negative_ce(ce, torch.tensor([0, 2, 2, 2, 1]), 2, 1)  # 1 + 3 + 5 + 4
        tensor(13.)
    """
    positive = (labels >= 0) & (labels < num_classes)
    negatives = ce[labels == num_classes]
    num_neg = min(int(neg_pos_ratio * int(positive.sum())), negatives.numel())
    return ce[positive].sum() + negatives.topk(num_neg)[0].sum()


@MODELS.register_module()
class SSDHead(AnchorHead):
    """Per-level score/box branches and SSD's hard-negative-mined losses (module docstring).

    Takes :class:`AnchorHead`'s ``bbox_coder``, ``reg_decoded_bbox``, ``train_cfg`` and
    ``test_cfg`` through ``**kwargs`` (no ``loss_cls``/``loss_bbox``: the losses are fixed),
    plus:

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each level's input.
        stacked_convs: ConvModules before each level's final conv (0 in SSD and SSDLite).
        feat_channels: Their channels.
        use_depthwise: SSDLite: depthwise-separable stacked convs, a 3x3 depthwise ConvModule
            and 1x1 final convs.
        conv_cfg: Conv layer config of the ConvModules.
        norm_cfg: Their norm layer config.
        act_cfg: Their activation config (None: no activation, v2's default).
        anchor_generator: Prior generator (default SSD300 COCO's ``SSDAnchorGenerator``).
        init_cfg: Default uniform Xavier on every ``Conv2d``, zero bias.

    ``train_cfg`` adds ``neg_pos_ratio`` and ``smoothl1_beta`` to the anchor settings. The
    per-level channels are ``level_channels`` (the ``in_channels`` attribute is the first's).
    """

    TRAIN_CFG_KEYS: ClassVar[frozenset[str]] = BaseDenseHead.TRAIN_CFG_KEYS | {
        "neg_pos_ratio",
        "smoothl1_beta",
    }

    def __init__(
        self,
        num_classes: int = 80,
        in_channels: Sequence[int] = (512, 1024, 512, 256, 256, 256),
        stacked_convs: int = 0,
        feat_channels: int = 256,
        use_depthwise: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        act_cfg: Cfg | None = None,
        anchor_generator: Cfg | object = _SSD300_ANCHORS,
        train_cfg: Cfg | None = None,
        init_cfg: Any = _XAVIER,
        **kwargs: Any,
    ) -> None:
        self.stacked_convs = stacked_convs
        self.use_depthwise = use_depthwise
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self.act_cfg = plain_cfg(act_cfg)
        self.level_channels = tuple(in_channels)
        beta = 1.0 if not train_cfg else train_cfg.get("smoothl1_beta", 1.0)
        super().__init__(
            num_classes=num_classes,
            in_channels=self.level_channels[0],
            feat_channels=feat_channels,
            anchor_generator=anchor_generator,
            loss_cls=_SOFTMAX_CE,
            loss_bbox=dict(type="SmoothL1Loss", beta=beta, loss_weight=1.0),
            train_cfg=train_cfg,
            init_cfg=init_cfg,
            **kwargs,
        )
        if train_cfg:  # v2: SSD never samples, whatever sampler the config names
            self.sampler = PseudoSampler()
            self.sampling = False

    def _init_layers(self) -> None:
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        priors = self.prior_generator.num_base_priors
        if len(priors) != len(self.level_channels):
            raise InvalidArgumentError(
                f"SSDHead: {len(self.level_channels)} in_channels for {len(priors)} anchor levels"
            )
        for channels, num_priors in zip(self.level_channels, priors, strict=True):
            self.cls_convs.append(self._branch(channels, num_priors * self.cls_out_channels))
            self.reg_convs.append(self._branch(channels, num_priors * 4))

    def _branch(self, in_channels: int, out_channels: int) -> nn.Sequential:
        """One level's branch: stacked convs, SSDLite's depthwise conv, then the final conv."""
        layers: list[nn.Module] = []
        modules = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        for _ in range(self.stacked_convs):
            conv = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
            layers.append(conv(in_channels, self.feat_channels, 3, padding=1, **modules))
            in_channels = self.feat_channels
        if self.use_depthwise:
            layers.append(
                ConvModule(in_channels, in_channels, 3, padding=1, groups=in_channels, **modules)
            )
        kernel = 1 if self.use_depthwise else 3
        layers.append(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2))
        return nn.Sequential(*layers)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level: ``cls_score [B, A_k*(C+1), H, W]`` and ``bbox_pred [B, A_k*4, H, W]``."""
        cls_scores = [conv(feat) for conv, feat in zip(self.cls_convs, feats, strict=True)]
        bbox_preds = [conv(feat) for conv, feat in zip(self.reg_convs, feats, strict=True)]
        return cls_scores, bbox_preds

    def loss_single(
        self,
        cls_score: torch.Tensor,
        bbox_pred: torch.Tensor,
        anchors: torch.Tensor,
        labels: torch.Tensor,
        label_weights: torch.Tensor,
        bbox_targets: torch.Tensor,
        bbox_weights: torch.Tensor,
        num_total_samples: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One image's ``(loss_cls [1], loss_bbox)`` over all its anchors ``[N, ...]``."""
        assert self.train_cfg is not None
        ce = self.loss_cls(cls_score, labels, label_weights, reduction_override="none")
        mined = hard_negative_ce(ce, labels, self.num_classes, self.train_cfg["neg_pos_ratio"])
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors, bbox_pred)
        loss_bbox = self.loss_bbox(
            bbox_pred, bbox_targets, bbox_weights, avg_factor=num_total_samples
        )
        return (mined / num_total_samples)[None], loss_bbox

    def loss(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None,
        img_metas: Sequence[ImgMeta],
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """``loss_cls`` and ``loss_bbox``, one tensor per **image** (v2)."""
        t = self._anchor_targets(cls_scores, gt_bboxes, gt_labels, img_metas, gt_bboxes_ignore)
        n = len(img_metas)

        def per_image(maps: Sequence[torch.Tensor], channels: int = 0) -> tuple[torch.Tensor, ...]:
            """Per image, every level's rows ``[N, channels]`` (targets: ``[N, ...]``)."""
            if channels:
                maps = [m.permute(0, 2, 3, 1).reshape(n, -1, channels) for m in maps]
            return torch.cat(list(maps), 1).unbind(0)

        losses_cls, losses_bbox = multi_apply(
            self.loss_single,
            per_image(cls_scores, self.cls_out_channels),
            per_image(bbox_preds, 4),
            per_image(t.anchors),
            per_image(t.labels),
            per_image(t.label_weights),
            per_image(t.bbox_targets),
            per_image(t.bbox_weights),
            num_total_samples=t.num_total_pos,
        )
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)


@MODELS.register_module()
class AscendSSDHead(SSDHead):
    """v2's Ascend-NPU ``SSDHead``: the same layers and numbers, batched differently there."""
