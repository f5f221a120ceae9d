"""``NASFCOS_FPN``: the searched pyramid of NAS-FCOS (MMDetection v2 neck, same keys)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import ConvModule, caffe2_xavier_init
from detforge.models.layers.merge_cells import ConcatCell
from detforge.models.necks.fpn import backbone_end_level, check_in_channels
from detforge.registry import MODELS, Cfg

__all__ = ["NASFCOS_FPN"]

_BN: Cfg = MappingProxyType(dict(type="BN"))
# cell name "c<a><b>": concatenate feature a and feature b (features 0-2 are the adapted
# backbone levels, each cell appends one); (with_input1_conv, with_input2_conv)
_CELLS = (
    ("c22_1", True, True),
    ("c22_2", True, True),
    ("c32", True, False),
    ("c02", True, False),
    ("c42", True, True),
    ("c36", True, True),
    ("c61", True, True),
)


@MODELS.register_module()
class NASFCOS_FPN(nn.Module):
    """NAS-FCOS's FPN (Wang et al., CVPR 2020).

    1x1 conv + BN + ReLU ``adapt_convs`` bring backbone levels ``start_level``... to
    ``out_channels`` (features 0-2); seven concatenation cells (``fpn.<name>``) each append a
    feature built from two earlier ones; P3-P5 are features 9, 8, 7 plus feature 5, each
    resized bilinearly, then resized to the size of backbone levels 1-3; each further level is
    a stride-2 3x3 conv of the previous (``extra_downsamples.i``, ReLU before all but the
    first).

    Args:
        in_channels: Channels of each backbone level.
        out_channels: Channels of every level.
        num_outs: Number of output levels (three plus the extra ones).
        start_level: First backbone level used (v2 default 1: C2 is left out).
        end_level: Last backbone level used (-1 = the last one).
        add_extra_convs: Kept for v2 configs; not used.
        conv_cfg: Conv config of the cells' input convs.
        norm_cfg: Norm config of the cells' input convs.
        init_cfg: Must be ``None``: the neck initialises itself (as in v2).

    Example:
        >>> neck = NASFCOS_FPN([2, 4, 8, 16], 8, num_outs=5)
        >>> feats = [torch.rand(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([2, 4, 8, 16])]
        >>> [o.shape[-1] for o in neck(feats)]
        [16, 8, 4, 2, 1]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 1,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg | None = None,
        init_cfg: Any = None,
    ) -> None:
        super().__init__()
        if init_cfg is not None:
            raise ValueError(
                "NASFCOS_FPN: init_cfg must be None (the neck initialises itself), "
                f"got {init_cfg!r}"
            )
        self.in_channels = check_in_channels(in_channels, "NASFCOS_FPN")
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.norm_cfg = norm_cfg
        self.conv_cfg = conv_cfg
        self.start_level = start_level
        self.end_level = end_level
        self.add_extra_convs = add_extra_convs
        self.backbone_end_level = backbone_end_level(
            self.num_ins, num_outs, start_level, end_level, "NASFCOS_FPN"
        )
        if self.backbone_end_level - start_level != 3 or self.num_ins < 4:
            raise ValueError(
                "NASFCOS_FPN: the cells combine three backbone levels and P3-P5 take their sizes "
                f"from input levels 1-3; got in_channels={self.in_channels}, "
                f"start_level={start_level}, end_level={end_level}"
            )
        self.adapt_convs = nn.ModuleList(
            ConvModule(
                self.in_channels[i],
                out_channels,
                1,
                bias=False,
                norm_cfg=_BN,
                act_cfg=dict(type="ReLU", inplace=False),
            )
            for i in range(start_level, self.backbone_end_level)
        )
        self.fpn = nn.ModuleDict()
        for name, input1_conv, input2_conv in _CELLS:
            self.fpn[name] = ConcatCell(
                in_channels=out_channels,
                out_channels=out_channels,
                with_out_conv=True,
                out_conv_cfg=dict(kernel_size=1, padding=0, bias=False, groups=out_channels),
                out_norm_cfg=_BN,
                out_conv_order=("norm", "act", "conv"),
                with_input1_conv=input1_conv,
                with_input2_conv=input2_conv,
                input_conv_cfg=conv_cfg,
                input_norm_cfg=norm_cfg,
                upsample_mode="nearest",
            )
        self.extra_downsamples = nn.ModuleList(
            ConvModule(
                out_channels,
                out_channels,
                3,
                stride=2,
                padding=1,
                act_cfg=None if i == 0 else dict(type="ReLU", inplace=False),
                order=("act", "norm", "conv"),
            )
            for i in range(num_outs - self.backbone_end_level + start_level)
        )

    def init_weights(self) -> None:
        """v2's: Caffe2-Xavier for the adapt and extra convs; the cells keep mmcv's default
        (v2 meant to re-initialise their output convs too, but tested for a ``conv_out``
        attribute no cell has)."""
        for modules in (self.adapt_convs, self.extra_downsamples):
            for module in modules.modules():
                if isinstance(module, nn.Conv2d):
                    caffe2_xavier_init(module)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Backbone levels -> ``num_outs`` maps of ``out_channels`` (P3 first)."""
        if len(inputs) != self.num_ins:
            raise ValueError(
                f"NASFCOS_FPN: got {len(inputs)} input levels, in_channels has {self.num_ins}"
            )
        feats = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.adapt_convs)]
        for name, cell in self.fpn.items():
            feats.append(cell(feats[int(name[1])], feats[int(name[2])]))
        outs = []
        for idx, input_idx in zip((9, 8, 7), (1, 2, 3), strict=True):
            top = F.interpolate(
                feats[5], size=feats[idx].shape[2:], mode="bilinear", align_corners=False
            )
            outs.append(
                F.interpolate(
                    feats[idx] + top,
                    size=inputs[input_idx].shape[2:],
                    mode="bilinear",
                    align_corners=False,
                )
            )
        for downsample in self.extra_downsamples:
            outs.append(downsample(outs[-1]))
        return tuple(outs)
