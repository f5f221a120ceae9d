"""``RFP``: the Recursive Feature Pyramid of DetectoRS (MMDetection v2's neck, with ``ASPP``).

Step 1 is an FPN on the backbone's features. Each further step feeds the FPN outputs back
into a copy of the backbone (``rfp_modules.{i}``, a ``DetectoRS_ResNet`` with
``rfp_inplanes``): level 0 as it is, levels 1+ through the shared :class:`ASPP`, added in its
stages 2–4 (:meth:`DetectoRS_ResNet.rfp_forward`) while it reruns on the image; the same FPN
turns its outputs into new pyramids, and each level is blended with the previous step's by a
learned gate, ``s * new + (1 - s) * old`` with ``s = sigmoid(rfp_weight(new))`` (one 1x1
conv shared by all levels and steps).

The input is the backbone's output with ``output_img=True``: the image first, then the
levels. Keys: FPN's (``lateral_convs``, ``fpn_convs``), ``rfp_modules.{i}.*`` (backbone keys),
``rfp_aspp.aspp.{0..3}.*``, ``rfp_weight.*``.

:meth:`RFP.init_weights` is v2's: Xavier-uniform for the FPN convs, each ``rfp_modules``
backbone's own ``init_weights`` (loading its ``pretrained`` checkpoint), ``rfp_weight`` zero.
v2 never runs the ASPP's ``init_cfg`` from there, so the ASPP keeps PyTorch's default init, as
here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import constant_init, xavier_init
from detforge.models.necks.fpn import FPN
from detforge.registry import MODELS, Cfg, build_module

__all__ = ["ASPP", "RFP"]


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling of DetectoRS: parallel convs concatenated.

    Branch ``i`` is a 1x1 conv (dilation 1) or a 3x3 conv with that dilation and padding; the
    last branch (dilation 1) runs on the global average of the input and is broadcast. Each
    branch is followed by a ReLU; the output has ``len(dilations) * out_channels`` channels.

    Args:
        in_channels: Input channels.
        out_channels: Channels of each branch.
        dilations: Dilation per branch; the last must be 1 (the global branch).
        init_cfg: Kaiming for the convs (applied only if a parent calls ``init_weights``).

    Example:
        >>> ASPP(8, 2)(torch.rand(1, 8, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dilations: Sequence[int] = (1, 3, 6, 1),
        init_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if dilations[-1] != 1:
            raise ValueError(f"ASPP: the last dilation must be 1 (global branch), got {dilations}")
        self.aspp = nn.ModuleList(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size=3 if d > 1 else 1,
                dilation=d,
                padding=d if d > 1 else 0,
                bias=True,
            )
            for d in dilations
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.init_cfg = {"type": "Kaiming", "layer": "Conv2d"} if init_cfg is None else init_cfg

    def init_weights(self) -> None:
        from detforge.models.layers import apply_init_cfg

        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C, H, W]`` -> ``Tensor[B, len(dilations) * out_channels, H, W]``."""
        last = len(self.aspp) - 1
        outs = [F.relu(conv(self.gap(x) if i == last else x)) for i, conv in enumerate(self.aspp)]
        outs[-1] = outs[-1].expand_as(outs[-2])
        return torch.cat(outs, dim=1)


@MODELS.register_module()
class RFP(FPN):
    """Recursive Feature Pyramid (see the module docstring).

    Args:
        rfp_steps: Unrolled steps (2 in the v2 configs: one feedback pass).
        rfp_backbone: Config (or module) of the backbone rerun per step; built
            ``rfp_steps - 1`` times.
        aspp_out_channels: Channels of each ASPP branch (4 branches → ``rfp_inplanes``).
        aspp_dilations: ASPP dilations.
        init_cfg: Must be ``None`` (as in v2: the init is fixed, see the module docstring).
        **kwargs: :class:`FPN`'s arguments.

    Example:
        >>> rfp = RFP(rfp_steps=2, aspp_out_channels=2, in_channels=[32, 64, 128, 256],
        ...           out_channels=8, num_outs=5,
        ...           rfp_backbone=dict(type='DetectoRS_ResNet', depth=50, base_channels=8,
        ...                             rfp_inplanes=8))
        >>> img = torch.rand(1, 3, 32, 32)
        >>> sizes = [(32, 8), (64, 4), (128, 2), (256, 1)]
        >>> feats = [torch.rand(1, c, s, s) for c, s in sizes]
        >>> [tuple(o.shape) for o in rfp.eval()([img, *feats])][:2]
        [(1, 8, 8, 8), (1, 8, 4, 4)]
    """

    def __init__(
        self,
        rfp_steps: int,
        rfp_backbone: Cfg | nn.Module,
        aspp_out_channels: int,
        aspp_dilations: Sequence[int] = (1, 3, 6, 1),
        init_cfg: None = None,
        **kwargs: Any,
    ) -> None:
        if init_cfg is not None:
            raise ValueError("RFP: init_cfg must be None (its initialisation is fixed, as in v2)")
        if rfp_steps < 1:
            raise ValueError(f"RFP: rfp_steps must be >= 1, got {rfp_steps}")
        super().__init__(init_cfg=None, **kwargs)
        self.rfp_steps = rfp_steps
        self.rfp_modules = nn.ModuleList(
            build_module(rfp_backbone, MODELS) for _ in range(1, rfp_steps)
        )
        self.rfp_aspp = ASPP(self.out_channels, aspp_out_channels, aspp_dilations)
        self.rfp_weight = nn.Conv2d(self.out_channels, 1, kernel_size=1, bias=True)

    def init_weights(self) -> None:
        """v2's RFP init (see the module docstring)."""
        for convs in (self.lateral_convs, self.fpn_convs):
            for m in convs.modules():
                if isinstance(m, nn.Conv2d):
                    xavier_init(m, distribution="uniform")
        for backbone in self.rfp_modules:
            cast(Any, backbone).init_weights()
        constant_init(self.rfp_weight, 0)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``[img, C2, C3, ...]`` -> the pyramid after ``rfp_steps`` steps."""
        if len(inputs) != self.num_ins + 1:
            raise ValueError(
                f"RFP: expects the image plus {self.num_ins} levels (backbone output_img=True), "
                f"got {len(inputs)} inputs"
            )
        img, feats = inputs[0], inputs[1:]
        x = super().forward(feats)
        for backbone in self.rfp_modules:
            rfp_feats = [x[0], *(self.rfp_aspp(level) for level in x[1:])]
            x_new = super().forward(cast(Any, backbone).rfp_forward(img, rfp_feats))
            gates = [torch.sigmoid(self.rfp_weight(level)) for level in x_new]
            x = tuple(s * new + (1 - s) * old for s, new, old in zip(gates, x_new, x, strict=True))
        return x
