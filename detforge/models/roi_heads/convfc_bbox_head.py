"""``ConvFCBBoxHead`` and its presets ``Shared2FCBBoxHead`` / ``Shared4Conv1FCBBoxHead`` (v2)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from detforge.errors import InvalidArgumentError
from detforge.models.layers import ConvModule, build_linear_layer
from detforge.models.roi_heads.bbox_heads import BBoxHead, cls_channels
from detforge.registry import MODELS, Cfg

__all__ = ["ConvFCBBoxHead", "Shared2FCBBoxHead", "Shared4Conv1FCBBoxHead"]


@MODELS.register_module()
class ConvFCBBoxHead(BBoxHead):
    """Shared convs/fcs, then separate cls and reg convs/fcs (v2's ``ConvFCBBoxHead``).

    Layout (keys ``shared_convs``, ``shared_fcs``, ``cls_convs``, ``cls_fcs``, ``reg_convs``,
    ``reg_fcs``, ``fc_cls``, ``fc_reg``)::

        shared convs -> shared fcs -> cls convs -> cls fcs -> fc_cls
                                   \\-> reg convs -> reg fcs -> fc_reg

    Takes :class:`BBoxHead`'s arguments plus the branch sizes, ``conv_out_channels``,
    ``fc_out_channels``, ``conv_cfg`` and ``norm_cfg``.
    """

    def __init__(
        self,
        num_shared_convs: int = 0,
        num_shared_fcs: int = 0,
        num_cls_convs: int = 0,
        num_cls_fcs: int = 0,
        num_reg_convs: int = 0,
        num_reg_fcs: int = 0,
        conv_out_channels: int = 256,
        fc_out_channels: int = 1024,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        init_cfg: Any = None,
        with_avg_pool: bool = False,
        with_cls: bool = True,
        with_reg: bool = True,
        roi_feat_size: int | tuple[int, int] = 7,
        in_channels: int = 256,
        num_classes: int = 80,
        bbox_coder: Cfg | None = None,
        reg_class_agnostic: bool = False,
        reg_decoded_bbox: bool = False,
        reg_predictor_cfg: Cfg | None = None,
        cls_predictor_cfg: Cfg | None = None,
        loss_cls: Cfg | None = None,
        loss_bbox: Cfg | None = None,
    ) -> None:
        super().__init__(
            with_avg_pool=with_avg_pool,
            with_cls=with_cls,
            with_reg=with_reg,
            roi_feat_size=roi_feat_size,
            in_channels=in_channels,
            num_classes=num_classes,
            bbox_coder=bbox_coder,
            reg_class_agnostic=reg_class_agnostic,
            reg_decoded_bbox=reg_decoded_bbox,
            reg_predictor_cfg=reg_predictor_cfg,
            cls_predictor_cfg=cls_predictor_cfg,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            init_cfg=init_cfg,
        )
        total = num_shared_convs + num_shared_fcs + num_cls_convs + num_cls_fcs
        if total + num_reg_convs + num_reg_fcs == 0:
            raise InvalidArgumentError("ConvFCBBoxHead needs at least one conv or fc")
        if (num_cls_convs > 0 or num_reg_convs > 0) and num_shared_fcs != 0:
            raise InvalidArgumentError("branch convs cannot follow shared fcs")
        if not with_cls and (num_cls_convs or num_cls_fcs):
            raise InvalidArgumentError("cls convs/fcs given with with_cls=False")
        if not with_reg and (num_reg_convs or num_reg_fcs):
            raise InvalidArgumentError("reg convs/fcs given with with_reg=False")
        self.num_shared_convs = num_shared_convs
        self.num_shared_fcs = num_shared_fcs
        self.num_cls_convs = num_cls_convs
        self.num_cls_fcs = num_cls_fcs
        self.num_reg_convs = num_reg_convs
        self.num_reg_fcs = num_reg_fcs
        self.conv_out_channels = conv_out_channels
        self.fc_out_channels = fc_out_channels
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg

        self.shared_convs, self.shared_fcs, shared_dim = self._branch(
            num_shared_convs, num_shared_fcs, in_channels, True
        )
        self.cls_convs, self.cls_fcs, cls_dim = self._branch(num_cls_convs, num_cls_fcs, shared_dim)
        self.reg_convs, self.reg_fcs, reg_dim = self._branch(num_reg_convs, num_reg_fcs, shared_dim)
        if num_shared_fcs == 0 and not with_avg_pool:
            if num_cls_fcs == 0:
                cls_dim *= self.roi_feat_area
            if num_reg_fcs == 0:
                reg_dim *= self.roi_feat_area
        self.relu = nn.ReLU(inplace=True)
        if with_cls:
            self.fc_cls = build_linear_layer(
                self.cls_predictor_cfg, cls_dim, cls_channels(self.loss_cls, num_classes)
            )
        if with_reg:
            out = 4 if reg_class_agnostic else 4 * num_classes
            self.fc_reg = build_linear_layer(self.reg_predictor_cfg, reg_dim, out)
        if init_cfg is None:
            self.init_cfg = [
                *self.init_cfg,
                dict(
                    type="Xavier",
                    distribution="uniform",
                    override=[dict(name="shared_fcs"), dict(name="cls_fcs"), dict(name="reg_fcs")],
                ),
            ]

    def _branch(
        self, num_convs: int, num_fcs: int, in_channels: int, is_shared: bool = False
    ) -> tuple[nn.ModuleList, nn.ModuleList, int]:
        last_dim = in_channels
        convs = nn.ModuleList()
        for i in range(num_convs):
            convs.append(
                ConvModule(
                    last_dim if i == 0 else self.conv_out_channels,
                    self.conv_out_channels,
                    3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                )
            )
        if num_convs > 0:
            last_dim = self.conv_out_channels
        fcs = nn.ModuleList()
        if num_fcs > 0:
            if (is_shared or self.num_shared_fcs == 0) and not self.with_avg_pool:
                last_dim *= self.roi_feat_area
            for i in range(num_fcs):
                fcs.append(
                    nn.Linear(last_dim if i == 0 else self.fc_out_channels, self.fc_out_channels)
                )
            last_dim = self.fc_out_channels
        return convs, fcs, last_dim

    def _run_branch(
        self, x: torch.Tensor, convs: nn.ModuleList, fcs: nn.ModuleList
    ) -> torch.Tensor:
        for conv in convs:
            x = conv(x)
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        for fc in fcs:
            x = self.relu(fc(x))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self._forward_cls_reg(self._forward_shared(x))

    def _forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        """The features after the shared convs and fcs (flattened when there are fcs)."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        return x

    def _forward_cls_reg(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x_cls = self._run_branch(x, self.cls_convs, self.cls_fcs)
        x_reg = self._run_branch(x, self.reg_convs, self.reg_fcs)
        cls_score = self.fc_cls(x_cls) if self.with_cls else None
        bbox_pred = self.fc_reg(x_reg) if self.with_reg else None
        return cls_score, bbox_pred


def _preset(num_shared_convs: int, num_shared_fcs: int, kwargs: dict[str, Any]) -> ConvFCBBoxHead:
    return ConvFCBBoxHead(
        num_shared_convs=num_shared_convs,
        num_shared_fcs=num_shared_fcs,
        num_cls_convs=0,
        num_cls_fcs=0,
        num_reg_convs=0,
        num_reg_fcs=0,
        **kwargs,
    )


@MODELS.register_module()
def Shared2FCBBoxHead(
    fc_out_channels: int = 1024,
    in_channels: int = 256,
    roi_feat_size: int | tuple[int, int] = 7,
    num_classes: int = 80,
    bbox_coder: Cfg | None = None,
    reg_class_agnostic: bool = False,
    reg_decoded_bbox: bool = False,
    reg_predictor_cfg: Cfg | None = None,
    cls_predictor_cfg: Cfg | None = None,
    loss_cls: Cfg | None = None,
    loss_bbox: Cfg | None = None,
    with_avg_pool: bool = False,
    with_cls: bool = True,
    with_reg: bool = True,
    conv_out_channels: int = 256,
    conv_cfg: Cfg | None = None,
    norm_cfg: Cfg | None = None,
    init_cfg: Any = None,
) -> ConvFCBBoxHead:
    """Two shared fcs (Faster R-CNN's head): a :class:`ConvFCBBoxHead` preset."""
    return _preset(0, 2, dict(locals()))


@MODELS.register_module()
def Shared4Conv1FCBBoxHead(
    fc_out_channels: int = 1024,
    in_channels: int = 256,
    roi_feat_size: int | tuple[int, int] = 7,
    num_classes: int = 80,
    bbox_coder: Cfg | None = None,
    reg_class_agnostic: bool = False,
    reg_decoded_bbox: bool = False,
    reg_predictor_cfg: Cfg | None = None,
    cls_predictor_cfg: Cfg | None = None,
    loss_cls: Cfg | None = None,
    loss_bbox: Cfg | None = None,
    with_avg_pool: bool = False,
    with_cls: bool = True,
    with_reg: bool = True,
    conv_out_channels: int = 256,
    conv_cfg: Cfg | None = None,
    norm_cfg: Cfg | None = None,
    init_cfg: Any = None,
) -> ConvFCBBoxHead:
    """Four shared convs and one shared fc: a :class:`ConvFCBBoxHead` preset."""
    return _preset(4, 1, dict(locals()))
