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

from abc import abstractmethod
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.dense_heads.base_dense_head import BaseDenseHead, conv_tower, prior_init_cfg
from detforge.models.task_modules.prior_generators.point_generator import MlvlPointGenerator
from detforge.models.utils import multi_apply
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = ["AnchorFreeHead"]

_FOCAL: Cfg = MappingProxyType(
    dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
)
_IOU: Cfg = MappingProxyType(dict(type="IoULoss", loss_weight=1.0))
_DISTANCES: Cfg = MappingProxyType(dict(type="DistancePointBBoxCoder"))


@MODELS.register_module()
class AnchorFreeHead(BaseDenseHead):
    """Point-based dense head with separate classification and regression conv towers (v2).

    Takes :class:`BaseDenseHead`'s arguments (default losses: focal and IoU; coder:
    ``DistancePointBBoxCoder``; ``init_cfg``: Normal(std=0.01) for every ``Conv2d`` and a
    0.01-prior bias for ``conv_cls``) plus:

    Args:
        stacked_convs: 3x3 ConvModules per tower.
        strides: Stride of each feature level (also the point generator's strides).
        dcn_on_last_conv: Make the last conv of each tower a modulated deformable conv
            (``DCNv2``).
        conv_bias: Bias of the tower convs: ``'auto'`` (only without a norm layer) or a bool.
        conv_cfg: Conv layer config of the towers.
        norm_cfg: Norm layer config of the towers.

    Abstract, as in v2: subclasses (:class:`FCOSHead`, ...) define ``loss`` and
    ``get_targets``, take these arguments through ``**kwargs`` and add their own.
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
        loss_cls: Cfg | nn.Module = _FOCAL,
        loss_bbox: Cfg | nn.Module = _IOU,
        bbox_coder: Cfg | object = _DISTANCES,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        train_cfg: Cfg | None = None,
        test_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        if conv_bias != "auto" and not isinstance(conv_bias, bool):
            raise InvalidArgumentError(f"conv_bias must be 'auto' or a bool, got {conv_bias!r}")
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            feat_channels=feat_channels,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            bbox_coder=bbox_coder,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=prior_init_cfg("conv_cls") if init_cfg is None else init_cfg,
        )
        self.stacked_convs = stacked_convs
        self.strides = strides
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.prior_generator = MlvlPointGenerator(strides)
        # a point is the single "anchor" of its cell
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.conv_cfg = plain_cfg(conv_cfg)
        self.norm_cfg = plain_cfg(norm_cfg)
        self._init_layers()

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self._init_predictor()

    def _tower(self) -> nn.Sequential:
        return conv_tower(
            self.in_channels,
            self.feat_channels,
            self.stacked_convs,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            bias=self.conv_bias,
            dcn_on_last_conv=self.dcn_on_last_conv,
        )

    def _init_cls_convs(self) -> None:
        self.cls_convs = self._tower()

    def _init_reg_convs(self) -> None:
        self.reg_convs = self._tower()

    def _init_predictor(self) -> None:
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)

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
        cls_feat = self.cls_convs(x)
        cls_score = self.conv_cls(cls_feat)
        reg_feat = self.reg_convs(x)
        bbox_pred = self.conv_reg(reg_feat)
        return cls_score, bbox_pred, cls_feat, reg_feat

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Per level ``cls_score [B, C, H, W]`` and ``bbox_pred [B, 4, H, W]``."""
        return multi_apply(self.forward_single, feats)[:2]

    # ---------------------------------------------------------------- targets
    @abstractmethod
    def get_targets(self, *args: Any, **kwargs: Any) -> Any:
        """The regression and classification targets of a batch (v2's abstract method)."""

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
