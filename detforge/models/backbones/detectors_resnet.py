"""``DetectoRS_ResNet``: the ResNet of DetectoRS with Switchable Atrous Convolution (SAC) and
the hooks of the Recursive Feature Pyramid (RFP), MMDetection v2 layout.

Differences from :class:`~detforge.models.backbones.ResNet` (all v2's):

- ``sac=dict(type='SAC', use_deform=True)`` replaces the 3x3 conv of every block of the
  stages in ``stage_with_sac`` (over ``dcn``);
- ``rfp_inplanes=C`` gives the first block of stages 2–4 a 1x1 ``rfp_conv`` (``C`` → block
  output channels, with bias) whose output is added before the final ReLU in
  :meth:`DetectoRS_ResNet.rfp_forward`, which the ``RFP`` neck calls with its ASPP features;
- ``output_img=True`` returns the input image first, for the ``RFP`` neck;
- :meth:`DetectoRS_ResNet.init_weights` is v2's own: with ``pretrained`` (or
  ``init_cfg=dict(type='Pretrained', ...)``) it only loads the checkpoint (non-strictly; AWS
  convs fill ``weight_gamma``/``weight_beta`` from the loaded filters, new layers keep their
  construction init); otherwise Kaiming for every ``Conv2d`` (SAC's switch and context convs
  included), 1 for norm weights, 0 for DCN offset convs and, with ``zero_init_residual``, 0 for
  each block's last norm. No ``init_cfg`` of a block is applied.

Keys are ResNet's plus ``layer{i}.{j}.conv2.{weight_diff, switch.*, pre_context.*,
post_context.*, offset_s.*, offset_l.*, weight_gamma, weight_beta}`` (SAC) and
``layer{i}.0.rfp_conv.*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from detforge.errors import ConfigKeyError, ConfigTypeError
from detforge.models.backbones.resnet import ResNet
from detforge.models.layers import build_conv_layer, constant_init, kaiming_init
from detforge.models.layers.res_layer import BasicBlock, Bottleneck
from detforge.registry import MODELS, Cfg
from detforge.utils.checkpoint import load_pretrained

__all__ = ["DetectoRSBottleneck", "DetectoRS_ResNet"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class DetectoRSBottleneck(Bottleneck):
    """:class:`Bottleneck` with an optional SAC 3x3 conv and an RFP input (``rfp_conv``).

    Args:
        rfp_inplanes: Channels of the RFP feature added to this block's output; ``None``
            for none.
        sac: Conv config of the 3x3 conv (``dict(type='SAC', use_deform=True)``), replacing
            ``dcn``/``conv_cfg`` there.
        init_cfg: Default (with ``rfp_inplanes``): ``rfp_conv`` zero, as v2 declares it.
        **kwargs: :class:`Bottleneck`'s arguments.
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        rfp_inplanes: int | None = None,
        sac: Cfg | None = None,
        init_cfg: _InitCfg = None,
        **kwargs: Any,
    ) -> None:
        if rfp_inplanes and init_cfg is None:
            init_cfg = {"type": "Constant", "val": 0, "override": {"name": "rfp_conv"}}
        super().__init__(inplanes, planes, init_cfg=init_cfg, **kwargs)
        self.sac = sac
        self.with_sac = sac is not None
        if sac is not None:
            self.conv2 = build_conv_layer(
                sac,
                self.width,
                self.width,
                kernel_size=3,
                stride=self.conv2_stride,
                padding=self.dilation,
                dilation=self.dilation,
                groups=self.conv2.groups,
                bias=False,
            )
        self.rfp_inplanes = rfp_inplanes
        if rfp_inplanes:
            self.rfp_conv = nn.Conv2d(rfp_inplanes, planes * self.expansion, 1, bias=True)

    def rfp_forward(self, x: torch.Tensor, rfp_feat: torch.Tensor | None) -> torch.Tensor:
        """:meth:`forward` with ``rfp_conv(rfp_feat)`` added before the last ReLU."""
        if self.with_cp and x.requires_grad:
            out = checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        if self.rfp_inplanes:
            if rfp_feat is None:
                raise ValueError("DetectoRSBottleneck.rfp_forward: this block needs rfp_feat")
            out = out + self.rfp_conv(rfp_feat)
        out_relu: torch.Tensor = self.relu(out)
        return out_relu


@MODELS.register_module()
class DetectoRS_ResNet(ResNet):
    """ResNet backbone of DetectoRS (see the module docstring).

    Args:
        depth: 50, 101 or 152.
        sac: SAC conv config for the 3x3 convs of the stages in ``stage_with_sac``.
        stage_with_sac: Per stage, whether it uses ``sac``.
        rfp_inplanes: Channels of the RFP features (stages 2–4 get an ``rfp_conv``).
        output_img: Put the input image first in the outputs (for the ``RFP`` neck).

    SAC reflect-pads its input by 2, so every SAC stage needs maps of at least 3x3 (images of
    at least 96x96 with SAC in stage 4), as in mmcv.
        pretrained: Checkpoint loaded by :meth:`init_weights`.
        init_cfg: Only ``dict(type='Pretrained', checkpoint=...)`` (same as ``pretrained``).
        **kwargs: :class:`ResNet`'s other arguments.

    Example:
        >>> net = DetectoRS_ResNet(depth=50, base_channels=8, conv_cfg=dict(type='ConvAWS'),
        ...                        sac=dict(type='SAC', use_deform=True),
        ...                        stage_with_sac=(False, True, True, True), output_img=True)
        >>> [tuple(f.shape) for f in net.eval()(torch.rand(1, 3, 96, 96))][:2]
        [(1, 3, 96, 96), (1, 32, 24, 24)]
    """

    arch_settings: ClassVar[dict[int, tuple[type[nn.Module], tuple[int, ...]]]] = {
        50: (DetectoRSBottleneck, (3, 4, 6, 3)),
        101: (DetectoRSBottleneck, (3, 4, 23, 3)),
        152: (DetectoRSBottleneck, (3, 8, 36, 3)),
    }

    def __init__(
        self,
        depth: int,
        sac: Cfg | None = None,
        stage_with_sac: Sequence[bool] = (False, False, False, False),
        rfp_inplanes: int | None = None,
        output_img: bool = False,
        pretrained: str | None = None,
        init_cfg: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if init_cfg and pretrained:
            raise ConfigKeyError(f"{name}: init_cfg and pretrained cannot both be set")
        if init_cfg is not None:
            if not isinstance(init_cfg, Mapping) or init_cfg.get("type") != "Pretrained":
                raise ConfigTypeError(
                    f"{name}: init_cfg can only be dict(type='Pretrained', checkpoint=...), "
                    f"got {init_cfg!r}"
                )
            pretrained = init_cfg.get("checkpoint")
        if pretrained is not None and not isinstance(pretrained, str):
            raise ConfigTypeError(f"{name}: pretrained must be a str or None, got {pretrained!r}")
        # read by _stage_args() while ResNet.__init__ builds the stages
        self.sac = sac
        self.stage_with_sac = tuple(stage_with_sac)
        self.rfp_inplanes = rfp_inplanes
        self.output_img = output_img
        num_stages = kwargs.get("num_stages", 4)
        if sac is not None and len(self.stage_with_sac) != num_stages:
            raise ValueError(
                f"{name}: stage_with_sac {self.stage_with_sac} needs num_stages={num_stages} "
                "entries"
            )
        super().__init__(depth, **kwargs)
        self.pretrained = pretrained
        self.init_cfg = (
            None if pretrained is None else {"type": "Pretrained", "checkpoint": pretrained}
        )

    def _stage_args(self, stage_idx: int) -> dict[str, Any]:
        sac = self.sac if self.sac is not None and self.stage_with_sac[stage_idx] else None
        return {"sac": sac, "rfp_inplanes": self.rfp_inplanes if stage_idx > 0 else None}

    def make_res_layer(
        self,
        inplanes: int,
        planes: int,
        num_blocks: int,
        stride: int,
        dilation: int,
        dcn: Cfg | None,
        init_cfg: _InitCfg,
        plugins: Sequence[Mapping[str, Any]] | None = None,
        stage: int = 0,
        sac: Cfg | None = None,
        rfp_inplanes: int | None = None,
    ) -> nn.Module:
        """One stage; the blocks get no ``init_cfg`` (v2), the first one ``rfp_inplanes``."""
        args = {"dilation": dilation, "dcn": dcn, "sac": sac, "plugins": plugins}
        return self._res_layer(
            inplanes, planes, num_blocks, stride, args, {"rfp_inplanes": rfp_inplanes}, stage
        )

    def init_weights(self) -> None:
        """v2's DetectoRS init (see the module docstring)."""
        if self.pretrained is not None:
            load_pretrained(self, self.pretrained)
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kaiming_init(m)
            elif isinstance(m, _BatchNorm | nn.GroupNorm):
                constant_init(m, 1)
        if self.dcn is not None:
            for m in self.modules():
                if isinstance(m, Bottleneck) and hasattr(m.conv2, "conv_offset"):
                    constant_init(cast(nn.Module, m.conv2.conv_offset), 0)
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    constant_init(m.norm3, 0)
                elif isinstance(m, BasicBlock):
                    constant_init(m.norm2, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """ResNet's outputs, preceded by ``x`` itself with ``output_img``."""
        outs = super().forward(x)
        return (x, *outs) if self.output_img else outs

    def rfp_forward(
        self, x: torch.Tensor, rfp_feats: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """Forward with the RFP features: ``rfp_feats[i]`` enters stage ``i`` (``i >= 1``)."""
        x = self.stem(x) if self.deep_stem else self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            rfp_feat = rfp_feats[i] if i > 0 else None
            for block in getattr(self, layer_name):
                x = block.rfp_forward(x, rfp_feat)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
