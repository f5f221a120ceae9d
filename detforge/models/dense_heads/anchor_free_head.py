"""``AnchorFreeHead``: the base of point-based dense heads (FCOS and relatives), MMDetection v2.28.

One point prior per feature cell (:class:`MlvlPointGenerator`, offset 0.5), two conv towers
(``cls_convs``, ``reg_convs``) of ``stacked_convs`` 3x3 ConvModules, then 3x3 ``conv_cls`` and
``conv_reg`` predictors. Test-time post-processing is v2's ``BaseDenseHead.get_bboxes``: per
level the ``nms_pre`` best (point, class) pairs above ``score_thr``, decoded by the box coder
(clipped to ``img_shape``), optionally rescaled and multiplied by score factors (centerness),
then class-wise NMS and ``max_per_img``. Zero-size boxes are kept (v2 dense heads never filter
by ``min_bbox_size``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.dense_heads.dense_test import (
    dense_forward_train,
    dense_get_bboxes,
    dense_get_bboxes_single,
    dense_simple_test,
)
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, TASK_UTILS, build_module

__all__ = ["AnchorFreeHead"]

Cfg = Mapping[str, Any]


@MODELS.register_module()
class AnchorFreeHead(nn.Module):
    """Point-based dense head with separate classification and regression conv towers (v2).

    Args:
        num_classes: Foreground classes.
        in_channels: Channels of each input feature map.
        feat_channels: Channels of the towers.
        stacked_convs: 3x3 ConvModules per tower.
        strides: Stride of each feature level (also the point generator's strides).
        dcn_on_last_conv: Make the last conv of each tower a modulated deformable conv
            (``DCNv2``).
        conv_bias: Bias of the tower convs: ``'auto'`` (only without a norm layer) or a bool.
        loss_cls: Classification loss config.
        loss_bbox: Regression loss config.
        bbox_coder: Box coder config (``TASK_UTILS``), default ``DistancePointBBoxCoder``.
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers.
        train_cfg: Training settings (unused by the base class).
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``.
        init_cfg: Initialisation config; default Normal(std=0.01) for every ``Conv2d`` and a
            0.01-prior bias for ``conv_cls``.

    Example:
        >>> head = AnchorFreeHead(num_classes=3, in_channels=8, feat_channels=8,
        ...                       stacked_convs=1, strides=[8])
        >>> scores, boxes = head([torch.zeros(1, 8, 4, 4)])
        >>> tuple(scores[0].shape), tuple(boxes[0].shape)
        ((1, 3, 4, 4), (1, 4, 4, 4))
    """

    _version = 1

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        strides: Sequence[int | Sequence[int]] = (4, 8, 16, 32, 64),
        dcn_on_last_conv: bool = False,
        conv_bias: bool | str = "auto",
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
        bbox_coder: Cfg | None = None,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        loss_cls = loss_cls or dict(
            type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
        )
        loss_bbox = loss_bbox or dict(type="IoULoss", loss_weight=1.0)
        bbox_coder = bbox_coder or dict(type="DistancePointBBoxCoder")
        self.init_cfg = init_cfg if init_cfg is not None else dict(
            type="Normal", layer="Conv2d", std=0.01,
            override=dict(type="Normal", name="conv_cls", std=0.01, bias_prob=0.01),
        )  # fmt: skip
        if conv_bias != "auto" and not isinstance(conv_bias, bool):
            raise ValueError(f"conv_bias must be 'auto' or a bool, got {conv_bias!r}")
        self.num_classes = num_classes
        self.use_sigmoid_cls = bool(loss_cls.get("use_sigmoid", False))
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        if self.cls_out_channels <= 0:
            raise ValueError(f"num_classes={num_classes} is too small")
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = strides
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.loss_cls = build_module(loss_cls, MODELS)
        self.loss_bbox = build_module(loss_bbox, MODELS)
        self.bbox_coder = build_module(bbox_coder, TASK_UTILS)
        self.prior_generator = MlvlPointGenerator(strides)
        # a point is the single "anchor" of its cell
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self._init_layers()

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self._init_predictor()

    def _tower(self) -> nn.ModuleList:
        convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            channels = self.in_channels if i == 0 else self.feat_channels
            last = i == self.stacked_convs - 1
            conv_cfg = dict(type="DCNv2") if self.dcn_on_last_conv and last else self.conv_cfg
            convs.append(
                ConvModule(
                    channels,
                    self.feat_channels,
                    3,
                    stride=1,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=self.norm_cfg,
                    bias=self.conv_bias,
                )
            )
        return convs

    def _init_cls_convs(self) -> None:
        self.cls_convs = self._tower()

    def _init_reg_convs(self) -> None:
        self.reg_convs = self._tower()

    def _init_predictor(self) -> None:
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # checkpoints without version metadata (mmdet < 2.x) name the predictors e.g.
        # ``fcos_cls``; map them to ``conv_cls``/``conv_reg``/``conv_centerness`` unless this
        # head really has a module of the old name
        if local_metadata.get("version") is None:
            children = dict(self.named_children())
            for key in [k for k in state_dict if k.startswith(prefix)]:
                name, _, rest = key[len(prefix) :].partition(".")
                if name in children or not rest:
                    continue
                for suffix in ("cls", "reg", "centerness"):
                    new = f"conv_{suffix}"
                    if name.endswith(suffix) and new in children:
                        state_dict[f"{prefix}{new}.{rest}"] = state_dict.pop(key)
                        break
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    # ----------------------------------------------------------------- forward
    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(cls_score, bbox_pred, cls_feat, reg_feat)`` of one level."""
        cls_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        cls_score = self.conv_cls(cls_feat)
        reg_feat = x
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        bbox_pred = self.conv_reg(reg_feat)
        return cls_score, bbox_pred, cls_feat, reg_feat

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, C, H, W]`` and ``bbox_pred [B, 4, H, W]``."""
        return multi_apply(self.forward_single, feats)[:2]

    # ------------------------------------------------------------ train / test
    def loss(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Implemented by subclasses (v2's abstract ``loss``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define loss()")

    def get_targets(self, *args: Any, **kwargs: Any) -> Any:
        """Implemented by subclasses (v2's abstract ``get_targets``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_targets()")

    def get_points(
        self,
        featmap_sizes: Sequence[Sequence[int]],
        dtype: torch.dtype,
        device: Any,
        flatten: bool = False,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Deprecated v2 API: per level the integer cell grids ``(y, x)`` (use
        ``prior_generator.grid_priors``)."""
        out = []
        for h, w in featmap_sizes:
            x_range = torch.arange(int(w), device=device).to(dtype)
            y_range = torch.arange(int(h), device=device).to(dtype)
            y, x = torch.meshgrid(y_range, x_range, indexing="ij")
            out.append((y.flatten(), x.flatten()) if flatten else (y, x))
        return out

    def forward_train(
        self,
        x: Sequence[torch.Tensor],
        img_metas: Sequence[Cfg],
        gt_bboxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor] | None = None,
        gt_bboxes_ignore: Sequence[torch.Tensor] | None = None,
        proposal_cfg: Cfg | None = None,
    ) -> Any:
        """Losses, and with ``proposal_cfg`` also the detections of each image."""
        return dense_forward_train(
            self, x, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, proposal_cfg
        )

    def get_bboxes(
        self,
        cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        score_factors: Sequence[torch.Tensor] | None = None,
        img_metas: Sequence[Cfg] | None = None,
        cfg: Cfg | None = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])`` (see :func:`dense_get_bboxes`)."""
        return dense_get_bboxes(
            self, cls_scores, bbox_preds, score_factors, img_metas, cfg, rescale, with_nms
        )

    def _get_bboxes_single(
        self,
        cls_score_list: Sequence[torch.Tensor],
        bbox_pred_list: Sequence[torch.Tensor],
        score_factor_list: Sequence[torch.Tensor | None],
        mlvl_priors: Sequence[torch.Tensor],
        img_meta: Cfg,
        cfg: Cfg | None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> Any:
        return dense_get_bboxes_single(
            self, cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta,
            cfg, rescale, with_nms,
        )  # fmt: skip

    def simple_test(
        self, feats: Sequence[torch.Tensor], img_metas: Sequence[Cfg], rescale: bool = False
    ) -> list[Any]:
        """Per image ``(det_bboxes [n, 5], det_labels [n])``."""
        return dense_simple_test(self, feats, img_metas, rescale)
