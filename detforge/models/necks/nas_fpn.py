"""``NASFPN``: the searched pyramid of NAS-FPN (MMDetection v2 neck, same keys and numerics)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.layers.merge_cells import GlobalPoolingCell, SumCell
from detforge.models.necks.fpn import backbone_end_level, check_in_channels
from detforge.registry import MODELS, Cfg

__all__ = ["NASFPN"]

_CAFFE2_XAVIER: Cfg = MappingProxyType(dict(type="Caffe2Xavier", layer="Conv2d"))
# (cell name, with_out_conv) of one stage, in v2's order (the state_dict order)
_STAGE_CELLS = (
    ("gp_64_4", True),
    ("sum_44_4", True),
    ("sum_43_3", True),
    ("sum_34_4", True),
    ("gp_43_5", False),
    ("sum_55_5", True),
    ("gp_54_7", False),
    ("sum_77_7", True),
    ("gp_75_6", True),
)


@MODELS.register_module()
class NASFPN(nn.Module):
    """NAS-FPN (Ghiasi et al., CVPR 2019) for five levels P3-P7.

    1x1 lateral ``ConvModule`` s (``lateral_convs.i``, no activation) bring the used backbone
    levels to ``out_channels``; each missing top level is a 1x1 ``ConvModule`` then a 2x2 max
    pool of the level below (``extra_downsamples.i.0``). Then ``stack_times`` stages of merge
    cells (``fpn_stages.s.<cell>``) rebuild the five levels: global-pooling cells (``gp_*``)
    and sum cells (``sum_*``), each named after its input and output levels, e.g.
    ``gp_64_4``: P6 gates P4 at P4's size. Cells with an output conv apply ReLU, a 3x3 conv and
    ``norm_cfg``'s norm.

    Args:
        in_channels: Channels of each backbone level.
        out_channels: Channels of every level.
        num_outs: Number of output levels (the stages need exactly five).
        stack_times: Number of stacked stages.
        start_level: First backbone level used.
        end_level: Last backbone level used (-1 = the last one).
        add_extra_convs: Kept for v2 configs; v2 ignores it (the extra levels are always
            conv + max pool).
        norm_cfg: Norm config of the laterals, the extra levels and the cells' output convs.
        init_cfg: Default Caffe2-Xavier for every ``Conv2d``.

    Example:
        >>> neck = NASFPN([4, 8, 16], 8, num_outs=5, stack_times=1)
        >>> feats = [torch.rand(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([4, 8, 16])]
        >>> [o.shape[-1] for o in neck(feats)]
        [32, 16, 8, 4, 2]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        stack_times: int,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        norm_cfg: Cfg | None = None,
        init_cfg: Cfg | Sequence[Cfg] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_in_channels(in_channels, "NASFPN")
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.stack_times = stack_times
        self.norm_cfg = norm_cfg
        self.start_level = start_level
        self.end_level = end_level
        self.add_extra_convs = add_extra_convs
        self.backbone_end_level = backbone_end_level(
            self.num_ins, num_outs, start_level, end_level, "NASFPN"
        )
        if num_outs != 5:
            raise ValueError(f"NASFPN: the stages combine five levels (P3-P7), num_outs={num_outs}")
        self.init_cfg = _CAFFE2_XAVIER if init_cfg is None else init_cfg

        def conv1x1(cin: int) -> ConvModule:
            return ConvModule(cin, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)

        self.lateral_convs = nn.ModuleList(
            conv1x1(self.in_channels[i]) for i in range(start_level, self.backbone_end_level)
        )
        extra_levels = num_outs - self.backbone_end_level + start_level
        self.extra_downsamples = nn.ModuleList(
            nn.Sequential(conv1x1(out_channels), nn.MaxPool2d(2, 2)) for _ in range(extra_levels)
        )
        self.fpn_stages = nn.ModuleList()
        for _ in range(stack_times):
            stage = nn.ModuleDict()
            for name, with_out_conv in _STAGE_CELLS:
                cell_type = GlobalPoolingCell if name.startswith("gp") else SumCell
                if with_out_conv:
                    stage[name] = cell_type(out_channels, out_channels, out_norm_cfg=norm_cfg)
                else:
                    stage[name] = GlobalPoolingCell(with_out_conv=False)
            self.fpn_stages.append(stage)

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` -> P3..P7, ``out_channels`` each."""
        if len(inputs) != self.num_ins:
            raise ValueError(
                f"NASFPN: got {len(inputs)} input levels, in_channels has {self.num_ins}"
            )
        feats = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for downsample in self.extra_downsamples:
            feats.append(downsample(feats[-1]))
        p3, p4, p5, p6, p7 = feats
        stage: Any
        for stage in self.fpn_stages:
            p4_1 = stage["gp_64_4"](p6, p4, out_size=p4.shape[-2:])
            p4_2 = stage["sum_44_4"](p4_1, p4, out_size=p4.shape[-2:])
            p3 = stage["sum_43_3"](p4_2, p3, out_size=p3.shape[-2:])
            p4 = stage["sum_34_4"](p3, p4_2, out_size=p4.shape[-2:])
            p5_tmp = stage["gp_43_5"](p4, p3, out_size=p5.shape[-2:])
            p5 = stage["sum_55_5"](p5, p5_tmp, out_size=p5.shape[-2:])
            p7_tmp = stage["gp_54_7"](p5, p4_2, out_size=p7.shape[-2:])
            p7 = stage["sum_77_7"](p7, p7_tmp, out_size=p7.shape[-2:])
            p6 = stage["gp_75_6"](p7, p5, out_size=p6.shape[-2:])
        return p3, p4, p5, p6, p7
