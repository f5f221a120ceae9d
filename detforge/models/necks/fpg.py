"""``FPG``: Feature Pyramid Grids (MMDetection v2 neck, same keys and numerics).

A grid of ``stack_times`` pathways over ``num_outs`` levels. Pathway 0 is the laterals (1x1
convs of the backbone levels, then stride-2 convs or max pools for extra levels). Pathway
``s + 1`` is built level by level in its direction (``'bu'`` bottom-up, ``'td'`` top-down), each
node the sum of whichever transitions exist: from the node just built in the same pathway
(``same_up``/``same_down``), from the same level of pathway ``s`` (``across_lateral``), from the
level above or below in pathway ``s`` (``across_down``/``across_up``), and from the same level
of pathway 0 (``across_skip``). ``skip_inds[level]`` lists the pathways where a level is not
built but copied. Each output is ``output_trans`` of the level's last node.

Transitions are given as configs, ``type`` one of ``'conv'`` (a ``ConvModule``),
``'interpolation_conv'`` (interpolate, then a ``ConvModule``) and ``'last_conv'`` (a
``ConvModule`` applied to the last of a level's nodes) and ``'identity'``; the other keys are
their arguments. v2's defaults do not fit together (a 3x3 across-down conv without upsampling
shrinks the map, and v2 could not build its default ``'identity'`` skip): v2's configs set
every transition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.layers import ConvModule, apply_init_cfg
from detforge.models.necks.fpn import backbone_end_level, check_in_channels
from detforge.registry import MODELS, Cfg

__all__ = ["FPG", "LastConv", "UpInterpolationConv"]

_SAME_UP: Cfg = MappingProxyType(dict(type="conv", kernel_size=3, stride=2, padding=1))
_LATERAL: Cfg = MappingProxyType(dict(type="conv", kernel_size=1))
_ACROSS_DOWN: Cfg = MappingProxyType(dict(type="conv", kernel_size=3))
_SKIP: Cfg = MappingProxyType(dict(type="identity"))
_OUTPUT: Cfg = MappingProxyType(dict(type="last_conv", kernel_size=3))
_INIT: tuple[Cfg, ...] = (
    MappingProxyType(dict(type="Caffe2Xavier", layer="Conv2d")),
    MappingProxyType(
        dict(
            type="Constant",
            layer=["_BatchNorm", "_InstanceNorm", "GroupNorm", "LayerNorm"],
            val=1.0,
        )
    ),
)
_DIRECTIONS = ("bu", "td")


class UpInterpolationConv(nn.Module):
    """Upsample by ``scale_factor`` (``mode``), then a ``ConvModule`` (``conv``).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        scale_factor: Upsampling factor.
        mode: Interpolation mode.
        align_corners: ``align_corners`` of the interpolation.
        kernel_size: Conv kernel (padding ``(k - 1) // 2``).
        **kwargs: Further ``ConvModule`` arguments (``norm_cfg``, ``order``, ``inplace``...).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int = 2,
        mode: str = "nearest",
        align_corners: bool | None = None,
        kernel_size: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mode = mode
        self.scale_factor = scale_factor
        self.align_corners = align_corners
        self.conv = ConvModule(
            in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, **kwargs
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(
            x, scale_factor=self.scale_factor, mode=self.mode, align_corners=self.align_corners
        )
        return self.conv(x)


class LastConv(nn.Module):
    """A ``ConvModule`` (``conv_out``) of the last of ``num_inputs`` nodes.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        num_inputs: Number of nodes it is given (pathways + 1).
        kernel_size: Conv kernel (padding ``(k - 1) // 2``).
        **kwargs: Further ``ConvModule`` arguments.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_inputs: int,
        kernel_size: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_inputs = num_inputs
        self.conv_out = ConvModule(
            in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, **kwargs
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != self.num_inputs:
            raise ValueError(f"LastConv: expected {self.num_inputs} inputs, got {len(inputs)}")
        return self.conv_out(inputs[-1])


_TRANSITIONS: Mapping[str, type[nn.Module]] = MappingProxyType(
    {
        "conv": ConvModule,
        "interpolation_conv": UpInterpolationConv,
        "last_conv": LastConv,
        "identity": nn.Identity,  # v2's default skip transition, which v2 itself could not build
    }
)


def _build_transition(cfg: Cfg, in_channels: int, out_channels: int, **extra: Any) -> nn.Module:
    args = dict(cfg)
    kind = args.pop("type", None)
    if kind not in _TRANSITIONS:
        raise ValueError(f"FPG: transition type must be one of {list(_TRANSITIONS)}, got {kind!r}")
    return _TRANSITIONS[kind](in_channels, out_channels, **args, **extra)


@MODELS.register_module()
class FPG(nn.Module):
    """Feature Pyramid Grids (Chen et al., 2020); see the module docstring.

    Args:
        in_channels: Channels of each backbone level.
        out_channels: Channels of every output level.
        num_outs: Number of levels.
        stack_times: Number of pathways after the laterals.
        paths: Direction of each pathway, ``'bu'`` or ``'td'``.
        inter_channels: Channels of the grid: one int for all levels, a list per level, or
            ``None`` for ``out_channels``.
        same_down_trans: Transition from the level above in the same (top-down) pathway.
        same_up_trans: Transition from the level below in the same (bottom-up) pathway.
        across_lateral_trans: Transition from the same level of the previous pathway.
        across_down_trans: Transition from the level above in the previous pathway.
        across_up_trans: Transition from the level below in the previous pathway.
        across_skip_trans: Transition from the same level of pathway 0 (the laterals).
        output_trans: Transition from a level's nodes to its output.
        start_level: First backbone level used.
        end_level: Last backbone level used (-1 = the last one).
        add_extra_convs: Extra levels by stride-2 3x3 convs instead of max pooling.
        norm_cfg: Kept for v2 configs (the transitions carry their own norms).
        skip_inds: Per level, the pathways (0-based) where the level is copied, not built.
        init_cfg: Default Caffe2-Xavier for ``Conv2d`` and 1 for norm weights.

    Example:
        >>> fpg = FPG([4, 8], 4, num_outs=3, stack_times=2, paths=['bu', 'bu'],
        ...           across_down_trans=dict(type='interpolation_conv', kernel_size=3),
        ...           across_skip_trans=dict(type='conv', kernel_size=1),
        ...           skip_inds=[(0,), (), ()])
        >>> feats = [torch.rand(1, 4, 16, 16), torch.rand(1, 8, 8, 8)]
        >>> [tuple(o.shape) for o in fpg(feats)]
        [(1, 4, 16, 16), (1, 4, 8, 8), (1, 4, 4, 4)]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        stack_times: int,
        paths: Sequence[str],
        inter_channels: int | Sequence[int] | None = None,
        same_down_trans: Cfg | None = None,
        same_up_trans: Cfg | None = _SAME_UP,
        across_lateral_trans: Cfg | None = _LATERAL,
        across_down_trans: Cfg | None = _ACROSS_DOWN,
        across_up_trans: Cfg | None = None,
        across_skip_trans: Cfg | None = _SKIP,
        output_trans: Cfg = _OUTPUT,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool = False,
        norm_cfg: Cfg | None = None,
        skip_inds: Sequence[Sequence[int]] | None = None,
        init_cfg: Cfg | Sequence[Cfg] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_in_channels(in_channels, "FPG")
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.inter_channels = _per_level(inter_channels, out_channels, num_outs)
        self.stack_times = stack_times
        self.paths = list(paths)
        if len(self.paths) != stack_times or any(p not in _DIRECTIONS for p in self.paths):
            raise ValueError(
                f"FPG: paths must list stack_times={stack_times} entries of {_DIRECTIONS}, "
                f"got {paths!r}"
            )
        self.skip_inds = [tuple(s) for s in skip_inds] if skip_inds is not None else None
        if self.skip_inds is None or len(self.skip_inds) != num_outs:
            raise ValueError(
                f"FPG: skip_inds must list num_outs={num_outs} tuples, got {skip_inds!r}"
            )
        self.start_level = start_level
        self.end_level = end_level
        self.add_extra_convs = add_extra_convs
        self.norm_cfg = norm_cfg
        self.backbone_end_level = backbone_end_level(
            self.num_ins, num_outs, start_level, end_level, "FPG"
        )
        self.init_cfg = [dict(c) for c in _INIT] if init_cfg is None else init_cfg
        inter = self.inter_channels

        used = self.backbone_end_level - start_level
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(self.in_channels[start_level + i], inter[i], 1) for i in range(used)
        )
        self.extra_downsamples = nn.ModuleList(
            nn.Conv2d(inter[i - 1], inter[i], 3, stride=2, padding=1)
            if add_extra_convs
            else nn.MaxPool2d(1, stride=2)
            for i in range(used, num_outs)
        )

        def maybe(cfg: Cfg | None, src: int, dst: int, exists: bool = True) -> nn.Module | None:
            return _build_transition(cfg, inter[src], inter[dst]) if cfg and exists else None

        self.fpn_transitions = nn.ModuleList()
        last = num_outs - 1
        for s in range(stack_times):
            stage = nn.ModuleList()
            for i in range(num_outs):
                trans = nn.ModuleDict()
                if s not in self.skip_inds[i]:  # absent transitions are None entries, as in v2
                    trans.add_module("same_up", maybe(same_up_trans, i - 1, i, i > 0))
                    trans.add_module("same_down", maybe(same_down_trans, i + 1, i, i < last))
                    trans.add_module("across_lateral", maybe(across_lateral_trans, i, i))
                    trans.add_module("across_down", maybe(across_down_trans, i + 1, i, i < last))
                    trans.add_module("across_up", maybe(across_up_trans, i - 1, i, i > 0))
                    # v2 sizes the skip transition from level i - 1 (the last level for i = 0)
                    trans.add_module("across_skip", maybe(across_skip_trans, i - 1, i))
                stage.append(trans)
            self.fpn_transitions.append(stage)
        self.output_transition = nn.ModuleList(
            _build_transition(output_trans, inter[i], out_channels, num_inputs=stack_times + 1)
            for i in range(num_outs)
        )
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Levels ``Tensor[B, C_i, H_i, W_i]`` -> ``num_outs`` maps of ``out_channels``."""
        if len(inputs) != self.num_ins:
            raise ValueError(f"FPG: got {len(inputs)} input levels, in_channels has {self.num_ins}")
        feats = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for downsample in self.extra_downsamples:
            feats.append(downsample(feats[-1]))
        assert self.skip_inds is not None
        outs = [feats]
        for s, direction in enumerate(self.paths):
            current = outs[-1]
            built: list[torch.Tensor] = []
            for j in range(self.num_outs):
                if s in self.skip_inds[j]:
                    # v2 copies level j here even in a top-down pathway, where the nodes are
                    # built (and later reversed) from the top level down
                    built.append(current[j])
                    continue
                lvl = self.num_outs - j - 1 if direction == "td" else j
                trans: Any = cast(nn.ModuleList, self.fpn_transitions[s])[lvl]
                same = trans["same_down"] if direction == "td" else trans["same_up"]
                parts = [
                    same(built[-1]) if same is not None else None,
                    _apply(trans["across_lateral"], current[lvl]),
                    _apply(trans["across_up"], current[lvl - 1]) if lvl > 0 else None,
                    _apply(trans["across_down"], current[lvl + 1])
                    if lvl < self.num_outs - 1
                    else None,
                    _apply(trans["across_skip"], outs[0][lvl]),
                ]
                built.append(_sum_present(parts))
            outs.append(built[::-1] if direction == "td" else built)
        return [
            self.output_transition[i]([nodes[i] for nodes in outs]) for i in range(self.num_outs)
        ]


def _per_level(channels: int | Sequence[int] | None, default: int, num_outs: int) -> list[int]:
    if channels is None:
        return [default] * num_outs
    if isinstance(channels, int):
        return [channels] * num_outs
    if len(channels) != num_outs:
        raise ValueError(
            f"FPG: inter_channels must list num_outs={num_outs} ints, got {channels!r}"
        )
    return list(channels)


def _apply(module: nn.Module | None, x: torch.Tensor) -> torch.Tensor | None:
    return module(x) if module is not None else None


def _sum_present(parts: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """The sum of the parts that exist, in order (v2's ``fuse``)."""
    present = [p for p in parts if p is not None]
    if not present:
        raise ValueError("FPG: a grid node has no incoming transition")
    return sum(present[1:], present[0])
