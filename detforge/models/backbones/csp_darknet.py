"""``CSPDarknet`` (YOLOv5 / YOLOX backbone) with MMDetection v2's layout and defaults.

State-dict keys: ``stem.conv`` (the Focus conv), ``stage{i}.0`` (stride-2 conv), ``stage{i}.1``
(``SPPBottleneck`` in the last stage, else the ``CSPLayer``), ``stage{i}.2`` (the last stage's
``CSPLayer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.models.backbones._common import InitCfg, StagedBackbone, freeze
from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.layers.csp_layer import SWISH, TORCH_DEFAULT_CONV_INIT, YOLO_BN, CSPLayer
from detforge.models.layers.depthwise_separable_conv_module import DepthwiseSeparableConvModule
from detforge.registry import MODELS, Cfg

__all__ = ["CSPDarknet", "Focus", "SPPBottleneck"]


class Focus(nn.Module):
    """Space-to-depth (each 2x2 patch's pixels become 4x the channels), then a ConvModule.

    The channel order is top-left, bottom-left, top-right, bottom-right, as in v2.

    Example:
        >>> Focus(3, 8, kernel_size=3)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = YOLO_BN,
        act_cfg: Cfg = SWISH,
    ) -> None:
        super().__init__()
        self.conv = ConvModule(
            in_channels * 4,
            out_channels,
            kernel_size,
            stride,
            padding=(kernel_size - 1) // 2,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C, H, W]`` -> ``Tensor[B, C_out, H / 2, W / 2]``."""
        patches = (x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2])
        return self.conv(torch.cat(patches, dim=1))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: 1x1 conv to half, max pools of ``kernel_sizes`` concatenated.

    Example:
        >>> SPPBottleneck(16, 16)(torch.rand(1, 16, 5, 5)).shape
        torch.Size([1, 16, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int] = (5, 9, 13),
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = YOLO_BN,
        act_cfg: Cfg = SWISH,
        init_cfg: InitCfg = None,
    ) -> None:
        super().__init__()
        mid = in_channels // 2
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        self.init_cfg = init_cfg
        self.conv1 = ConvModule(in_channels, mid, 1, stride=1, **layers)
        self.poolings = nn.ModuleList(
            nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2) for k in kernel_sizes
        )
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), out_channels, 1, **layers)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then the children's own init (mmcv ``BaseModule``)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, C_in, H, W]`` -> ``Tensor[B, C_out, H, W]``."""
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *(pool(x) for pool in self.poolings)], dim=1))


@MODELS.register_module()
class CSPDarknet(StagedBackbone):
    """CSP-Darknet backbone of YOLOv5 and YOLOX (MMDetection v2 ``CSPDarknet``).

    A Focus stem (``stem``, stride 2) and 4 (``'P5'``) or 5 (``'P6'``) stages, each a stride-2
    3x3 conv and a :class:`~detforge.models.layers.CSPLayer`; the last stage puts an
    :class:`SPPBottleneck` between them and its CSP blocks add no identity. Output index 0 is
    the stem, ``i`` is ``stage{i}`` (strides 2, 4, 8, 16, 32[, 64]).

    Args:
        arch: ``'P5'`` or ``'P6'``.
        deepen_factor: Blocks per CSP layer: ``max(round(n * deepen_factor), 1)``.
        widen_factor: Channels: ``int(c * widen_factor)``.
        out_indices: Outputs returned.
        frozen_stages: ``stem`` and ``stage1`` … ``stage{frozen_stages}`` get no gradients
            and stay in eval mode (-1: nothing frozen, 0: the stem only).
        use_depthwise: Depthwise separable stride-2 convs and bottleneck 3x3 convs.
        arch_ovewrite: Replaces the arch's stage settings ``[in, out, blocks, add_identity,
            use_spp]`` (v2's spelling).
        spp_kernal_sizes: Max-pool kernels of the SPP block (v2's spelling).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation config.
        norm_eval: Keep batch-norm layers in eval mode during training.
        init_cfg: Initialisation config used by :meth:`init_weights` (default: PyTorch's
            kaiming-uniform ``a=sqrt(5)`` for every Conv2d).

    Example:
        >>> net = CSPDarknet(deepen_factor=0.33, widen_factor=0.125).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2)]
    """

    arch_settings: ClassVar[dict[str, tuple[tuple[int, int, int, bool, bool], ...]]] = {
        "P5": (
            (64, 128, 3, True, False),
            (128, 256, 9, True, False),
            (256, 512, 9, True, False),
            (512, 1024, 3, False, True),
        ),
        "P6": (
            (64, 128, 3, True, False),
            (128, 256, 9, True, False),
            (256, 512, 9, True, False),
            (512, 768, 3, True, False),
            (768, 1024, 3, False, True),
        ),
    }

    def __init__(
        self,
        arch: str = "P5",
        deepen_factor: float = 1.0,
        widen_factor: float = 1.0,
        out_indices: Sequence[int] = (2, 3, 4),
        frozen_stages: int = -1,
        use_depthwise: bool = False,
        arch_ovewrite: Sequence[Sequence[int | bool]] | None = None,
        spp_kernal_sizes: Sequence[int] = (5, 9, 13),
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = YOLO_BN,
        act_cfg: Cfg = SWISH,
        norm_eval: bool = False,
        init_cfg: InitCfg = None,
    ) -> None:
        super().__init__()
        if arch not in self.arch_settings:
            raise ValueError(
                f"CSPDarknet: arch must be one of {sorted(self.arch_settings)}, got {arch!r}"
            )
        settings = arch_ovewrite if arch_ovewrite else self.arch_settings[arch]
        if not set(out_indices) <= set(range(len(settings) + 1)):
            raise ValueError(
                f"CSPDarknet: out_indices {tuple(out_indices)} must lie in 0..{len(settings)}"
            )
        if frozen_stages not in range(-1, len(settings) + 1):
            raise ValueError(
                f"CSPDarknet: frozen_stages must be in -1..{len(settings)}, got {frozen_stages}"
            )
        self.init_cfg = TORCH_DEFAULT_CONV_INIT if init_cfg is None else init_cfg
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.use_depthwise = use_depthwise
        self.norm_eval = norm_eval
        layers: dict[str, Any] = {"conv_cfg": conv_cfg, "norm_cfg": norm_cfg, "act_cfg": act_cfg}
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule

        self.stem = Focus(3, int(int(settings[0][0]) * widen_factor), kernel_size=3, **layers)
        self.layers = ["stem"]
        for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(settings):
            cin, cout = int(int(cin) * widen_factor), int(int(cout) * widen_factor)
            stage: list[nn.Module] = [conv(cin, cout, 3, stride=2, padding=1, **layers)]
            if use_spp:
                stage.append(SPPBottleneck(cout, cout, kernel_sizes=spp_kernal_sizes, **layers))
            stage.append(
                CSPLayer(
                    cout,
                    cout,
                    num_blocks=max(round(int(blocks) * deepen_factor), 1),
                    add_identity=bool(add_identity),
                    use_depthwise=use_depthwise,
                    **layers,
                )
            )
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
            self.layers.append(f"stage{i + 1}")
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        freeze(getattr(self, name) for name in self.layers[: self.frozen_stages + 1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, 3, H, W]`` -> one feature map per ``out_indices`` entry."""
        return self.run_stages(x, self.layers)
