"""``CTResNetNeck``: CenterNet's upsampling neck (MMDetection v2 layout, defaults and init).

State-dict keys: ``deconv_layers.{2i}`` (3x3 ConvModule, a ``ModulatedDeformConv2dPack`` with
``use_dcn``: ``.conv.weight``, ``.conv.conv_offset.*``, ``.bn.*``) and ``deconv_layers.{2i+1}``
(4x4 stride-2 ``ConvTranspose2d`` ConvModule: ``.conv.weight``, ``.bn.*``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.registry import MODELS

__all__ = ["CTResNetNeck"]


def _bilinear_kernel_(weight: torch.Tensor) -> None:
    """Write a bilinear-upsampling kernel into ``weight[i, 0]`` for every ``i``.

    ``weight`` is a transposed conv's ``[C_in, C_out / groups, kh, kw]``; as in v2 (and
    CenterNet's code), only output channel 0 of each input channel is set, the rest keep
    their values.
    """
    f = math.ceil(weight.size(2) / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)

    def ramp(n: int) -> torch.Tensor:
        return torch.tensor([1 - math.fabs(i / f - c) for i in range(n)], dtype=weight.dtype)

    weight[:, 0] = ramp(weight.size(2))[:, None] * ramp(weight.size(3))[None, :]


@MODELS.register_module()
class CTResNetNeck(nn.Module):
    """Upsample the last backbone map with (conv, deconv) pairs (MMDetection v2 ``CTResNetNeck``).

    For each stage: a 3x3 ConvModule (DCNv2 with ``use_dcn``) + BN + ReLU to
    ``num_deconv_filters[i]`` channels, then a ``num_deconv_kernels[i]`` stride-2 transposed
    conv (padding 1) + BN + ReLU doubling the resolution.

    Args:
        in_channel: Channels of the last backbone map (v2's singular name).
        num_deconv_filters: Output channels of each stage.
        num_deconv_kernels: Kernel size of each stage's transposed conv.
        use_dcn: Modulated deformable 3x3 convs (v2's default) instead of plain ones.
        init_cfg: ``None`` for v2's own :meth:`init_weights` (bilinear transposed-conv
            kernels, BN 1/0, PyTorch's default init for plain convs); a config given here is
            applied instead (v2 accepted and ignored it).

    Example:
        >>> neck = CTResNetNeck(in_channel=16, num_deconv_filters=(8, 4),
        ...                     num_deconv_kernels=(4, 4), use_dcn=False)
        >>> [tuple(f.shape) for f in neck([torch.rand(1, 16, 4, 4)])]
        [(1, 4, 16, 16)]
    """

    def __init__(
        self,
        in_channel: int,
        num_deconv_filters: Sequence[int],
        num_deconv_kernels: Sequence[int],
        use_dcn: bool = True,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if len(num_deconv_filters) != len(num_deconv_kernels):
            raise ValueError(
                f"CTResNetNeck: num_deconv_filters {tuple(num_deconv_filters)} and "
                f"num_deconv_kernels {tuple(num_deconv_kernels)} need the same length"
            )
        self.init_cfg = init_cfg
        self.use_dcn = use_dcn
        self.in_channel = in_channel
        layers: list[nn.Module] = []
        channels = in_channel
        for filters, kernel in zip(num_deconv_filters, num_deconv_kernels, strict=True):
            layers.append(
                ConvModule(
                    channels,
                    filters,
                    3,
                    padding=1,
                    conv_cfg={"type": "DCNv2"} if use_dcn else None,
                    norm_cfg={"type": "BN"},
                )
            )
            layers.append(
                ConvModule(
                    filters,
                    filters,
                    kernel,
                    stride=2,
                    padding=1,
                    conv_cfg={"type": "deconv"},
                    norm_cfg={"type": "BN"},
                )
            )
            channels = filters
        self.deconv_layers = nn.Sequential(*layers)

    def init_weights(self) -> None:
        """v2's init: bilinear transposed convs, BN 1/0, default-init plain convs."""
        if self.init_cfg is not None:
            apply_init_cfg(self, self.init_cfg)
            return
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.ConvTranspose2d):
                    m.reset_parameters()
                    _bilinear_kernel_(m.weight)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif not self.use_dcn and isinstance(m, nn.Conv2d):
                    m.reset_parameters()

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor]:
        """Backbone maps (the last one is used) -> ``(Tensor[B, C, H * 2^n, W * 2^n],)``."""
        if not isinstance(inputs, list | tuple):
            raise TypeError(f"CTResNetNeck: inputs must be a list or tuple, got {type(inputs)}")
        return (self.deconv_layers(inputs[-1]),)
