"""Residual blocks (``BasicBlock``, ``Bottleneck``) and ``ResLayer``, one stage of them.

Sub-module names are MMDetection's (``conv1``, ``bn1``, ..., ``downsample.0``/``.1``), so the
state-dict keys of every ResNet-like backbone built from them match v2 checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from detforge.models.layers.conv import build_conv_layer
from detforge.models.layers.init import apply_init_cfg
from detforge.models.layers.norm import build_norm_layer
from detforge.models.layers.plugin import build_plugin_layer
from detforge.registry import Cfg, plain_cfg

__all__ = ["BN", "PLUGIN_POSITIONS", "BasicBlock", "Bottleneck", "ResLayer"]

#: plain BatchNorm, the default norm layer of the residual blocks
BN: Cfg = MappingProxyType({"type": "BN"})

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None

#: where a Bottleneck can run plugins (v2's ``allowed_position``)
PLUGIN_POSITIONS = ("after_conv1", "after_conv2", "after_conv3")


def _plugins_at(plugins: Sequence[Mapping[str, Any]], position: str) -> list[Mapping[str, Any]]:
    """The ``cfg`` of each plugin spec ``dict(cfg=..., position=...)`` at ``position``."""
    return [p["cfg"] for p in plugins if p["position"] == position]


def _no_plugins(plugins: Any, owner: str) -> None:
    if plugins is not None:
        raise NotImplementedError(f"{owner}: plugins are not supported (got {plugins!r})")


def _check_plugin_specs(plugins: Any, owner: str) -> None:
    if not isinstance(plugins, list | tuple):
        raise TypeError(f"{owner}: plugins must be a list of dicts, got {plugins!r}")
    for spec in plugins:
        if not isinstance(spec, Mapping) or "cfg" not in spec or "position" not in spec:
            raise ValueError(
                f"{owner}: each plugin must be dict(cfg=..., position=...), got {spec!r}"
            )
        extra = sorted(set(spec) - {"cfg", "position"})
        if extra:
            raise ValueError(f"{owner}: plugin {dict(spec)!r} has unexpected keys {extra}")
        if spec["position"] not in PLUGIN_POSITIONS:
            raise ValueError(
                f"{owner}: plugin position {spec['position']!r} is not one of {PLUGIN_POSITIONS}"
            )


def _conv_strides(owner: str, style: str, stride: int) -> tuple[int, int]:
    """``(conv1 stride, conv2 stride)`` of a bottleneck: ``'pytorch'`` strides the 3x3 conv,
    ``'caffe'`` the first 1x1 conv."""
    if style not in ("pytorch", "caffe"):
        raise ValueError(f"{owner}: style must be 'pytorch' or 'caffe', got {style!r}")
    return (1, stride) if style == "pytorch" else (stride, 1)


def _grouped_width(planes: int, groups: int, base_width: int, base_channels: int) -> int:
    """Width of a bottleneck's 3x3 conv: ``planes``, or with ``groups > 1`` (ResNeXt)
    ``floor(planes * (base_width / base_channels)) * groups``, in v2's float order (with
    RegNet's ``base_channels == planes``, ``176 * (120 / 176)`` floors to 119)."""
    if groups == 1:
        return planes
    return math.floor(planes * (base_width / base_channels)) * groups


def _conv2_cfg(owner: str, conv_cfg: Cfg | None, dcn: Cfg | None) -> Cfg | None:
    """Conv config of a bottleneck's 3x3 conv(s): ``dcn`` (without ``fallback_on_stride``)
    unless it is None or asks to fall back to ``conv_cfg``."""
    if dcn is None:
        return conv_cfg
    dcn_cfg = dict(dcn)
    if dcn_cfg.pop("fallback_on_stride", False):
        return conv_cfg
    if conv_cfg is not None:
        raise ValueError(f"{owner}: conv_cfg must be None when dcn is set")
    return dcn_cfg


def _run_block(block: Any, x: torch.Tensor) -> torch.Tensor:
    """``block.relu(block._residual(x))``, checkpointing the residual when ``block.with_cp``.

    Shared by every residual block whose ``_residual`` returns ``branch(x) + shortcut(x)``
    (``BasicBlock``, ``Bottleneck``, Res2Net's and ResNeSt's blocks).
    """
    if block.with_cp and x.requires_grad:
        out = checkpoint(block._residual, x, use_reentrant=False)
    else:
        out = block._residual(x)
    return block.relu(out)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34).

    Args:
        inplanes: Input channels.
        planes: Output channels.
        stride: Stride of the first conv.
        dilation: Dilation (and padding) of the first conv.
        downsample: Shortcut module, or ``None`` for identity.
        style: ``'pytorch'`` or ``'caffe'`` (no difference for this block).
        with_cp: Checkpoint the residual branch to save memory when training.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        dcn: Must be ``None`` (MMDetection has no DCN BasicBlock).
        plugins: Must be ``None`` (v2 has no plugins in BasicBlock).
        init_cfg: This block's ``init_cfg`` (ResNet passes the zero-init of ``norm2``).
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = "pytorch",
        with_cp: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = BN,
        dcn: Cfg | None = None,
        plugins: Any = None,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if dcn is not None:
            raise NotImplementedError("BasicBlock: dcn is not supported (use depth >= 50)")
        if plugins is not None:
            raise NotImplementedError(
                "BasicBlock: plugins are not supported, as in v2 (use depth >= 50); "
                f"got {plugins!r}"
            )
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(
            conv_cfg,
            inplanes,
            planes,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.init_cfg = init_cfg

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_block(self, x)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)


class Bottleneck(nn.Module):
    """1x1 → 3x3 → 1x1 convolutions with a shortcut (ResNet-50+, ResNeXt).

    With ``style='pytorch'`` the 3x3 conv carries the stride, with ``'caffe'`` the first 1x1.
    The 3x3 conv is ``width`` wide: ``planes`` when ``groups == 1``, else
    ``floor(planes * base_width / base_channels) * groups`` (ResNeXt).

    Args:
        inplanes: Input channels.
        planes: Base channels; the output has ``planes * 4``.
        stride: Stride of the block.
        dilation: Dilation (and padding) of the 3x3 conv.
        downsample: Shortcut module, or ``None`` for identity.
        style: ``'pytorch'`` or ``'caffe'``.
        with_cp: Checkpoint the residual branch to save memory when training.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        dcn: Deformable conv config for the 3x3 conv (``dict(type='DCN', deform_groups=1,
            fallback_on_stride=False)``); ``fallback_on_stride=True`` keeps a plain conv.
        plugins: ``[dict(cfg=plugin_cfg, position='after_conv1'|'after_conv2'|'after_conv3')]``
            (v2): plugin layers run, in order, after that conv's norm (and ReLU); those after
            conv1/conv2 get ``width`` channels, those after conv3 ``planes * 4``. A plugin is the
            attribute named by its abbreviation plus ``cfg['postfix']`` (``context_block``).
        groups: Groups of the 3x3 conv (ResNeXt cardinality).
        base_width: Width per group at ``base_channels`` (ResNeXt).
        base_channels: The backbone's base channels (ResNeXt width formula).
        init_cfg: This block's ``init_cfg`` (ResNet passes the zero-init of ``norm3``).
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = "pytorch",
        with_cp: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = BN,
        dcn: Cfg | None = None,
        plugins: Any = None,
        groups: int = 1,
        base_width: int = 4,
        base_channels: int = 64,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        if plugins is not None:
            _check_plugin_specs(plugins, "Bottleneck")
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.conv_cfg = conv_cfg
        self.norm_cfg = plain_cfg(norm_cfg)
        self.dcn = dcn
        self.with_dcn = dcn is not None
        self.init_cfg = init_cfg
        self.conv1_stride, self.conv2_stride = _conv_strides("Bottleneck", style, stride)
        width = _grouped_width(planes, groups, base_width, base_channels)
        self.width = width

        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, width, kernel_size=1, stride=self.conv1_stride, bias=False
        )
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(
            _conv2_cfg("Bottleneck", conv_cfg, dcn),
            width,
            width,
            kernel_size=3,
            stride=self.conv2_stride,
            padding=dilation,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(
            conv_cfg, width, planes * self.expansion, kernel_size=1, bias=False
        )
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.plugins = plugins
        self.with_plugins = plugins is not None
        specs = plugins or []
        self.after_conv1_plugin_names = self.make_block_plugins(
            width, _plugins_at(specs, "after_conv1")
        )
        self.after_conv2_plugin_names = self.make_block_plugins(
            width, _plugins_at(specs, "after_conv2")
        )
        self.after_conv3_plugin_names = self.make_block_plugins(
            planes * self.expansion, _plugins_at(specs, "after_conv3")
        )

    def make_block_plugins(
        self, in_channels: int, plugins: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Build and attach ``plugins`` (configs) for ``in_channels``; their attribute names."""
        names = []
        for cfg in plugins:
            args = dict(cfg)
            postfix = args.pop("postfix", "")
            name, layer = build_plugin_layer(args, postfix=postfix, in_channels=in_channels)
            if hasattr(self, name):
                raise ValueError(
                    f"Bottleneck: duplicate plugin name {name!r}; give the plugins of one type "
                    "distinct 'postfix' values"
                )
            self.add_module(name, layer)
            names.append(name)
        return names

    def forward_plugin(self, x: torch.Tensor, plugin_names: Sequence[str]) -> torch.Tensor:
        """Run the named plugins in order."""
        for name in plugin_names:
            x = getattr(self, name)(x)
        return x

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.forward_plugin(out, self.after_conv1_plugin_names)
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.forward_plugin(out, self.after_conv2_plugin_names)
        out = self.norm3(self.conv3(out))
        out = self.forward_plugin(out, self.after_conv3_plugin_names)
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_block(self, x)

    def init_weights(self) -> None:
        apply_init_cfg(self, self.init_cfg)


class ResLayer(nn.Sequential):
    """A stage of ``num_blocks`` residual blocks; the first (or last) one changes resolution.

    ``block`` is a class with an ``expansion`` attribute whose constructor takes ``inplanes``,
    ``planes``, ``stride``, ``downsample``, ``conv_cfg`` and ``norm_cfg`` plus ``block_args``.
    When the stride is not 1 or the channel count changes, the shortcut is
    ``downsample = Sequential([AvgPool2d,] conv1x1, norm)``; with ``avg_down`` the pooling does
    the striding (``ceil_mode=True, count_include_pad=False``) and the conv has stride 1, so
    the keys are ``downsample.1.*`` / ``downsample.2.*`` instead of ``downsample.0.*`` /
    ``downsample.1.*``. As in v2, ``avg_down`` adds the pooling even to a stride-1 shortcut
    (a 1x1 pooling that changes nothing but the keys: ``layer1.0.downsample.1.weight`` in
    ResNetV1d, ResNeSt and Res2Net checkpoints).

    Args:
        block: Block class (``BasicBlock``, ``Bottleneck``).
        inplanes: Input channels of the stage.
        planes: Base channels of the blocks (output is ``planes * block.expansion``).
        num_blocks: Number of blocks.
        stride: Stride of the resolution-changing block.
        avg_down: Downsample the shortcut with average pooling.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        downsample_first: The first block changes resolution (ResNet); False puts it last
            (Hourglass).
        block_args: Further keyword arguments of every block (``dilation``, ``style``, ...).
        first_block_args: Keyword arguments of the first block only, on top of
            ``block_args`` (Res2Net's ``stage_type='stage'``).

    Example:
        >>> layer = ResLayer(BasicBlock, 8, 16, 2, stride=2)
        >>> sorted({k.rsplit('.', 1)[0] for k in layer.state_dict()})[:3]
        ['0.bn1', '0.bn2', '0.conv1']
    """

    def __init__(
        self,
        block: Callable[..., nn.Module],
        inplanes: int,
        planes: int,
        num_blocks: int,
        stride: int = 1,
        avg_down: bool = False,
        conv_cfg: Mapping[str, Any] | None = None,
        norm_cfg: Mapping[str, Any] = {"type": "BN"},
        downsample_first: bool = True,
        block_args: Mapping[str, Any] | None = None,
        first_block_args: Mapping[str, Any] | None = None,
    ) -> None:
        expansion: int = getattr(block, "expansion", 1)
        extra = dict(block_args or {})
        first_extra = {**extra, **(first_block_args or {})}
        downsample = None
        if stride != 1 or inplanes != planes * expansion:
            parts: list[nn.Module] = []
            conv_stride = stride
            if avg_down:
                conv_stride = 1
                parts.append(
                    nn.AvgPool2d(
                        kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False
                    )
                )
            parts.append(
                build_conv_layer(
                    conv_cfg,
                    inplanes,
                    planes * expansion,
                    kernel_size=1,
                    stride=conv_stride,
                    bias=False,
                )
            )
            parts.append(build_norm_layer(norm_cfg, planes * expansion)[1])
            downsample = nn.Sequential(*parts)

        # (inplanes, planes, stride, downsample) of each block, in order
        specs: list[tuple[int, int, int, nn.Module | None]]
        if downsample_first:
            specs = [(inplanes, planes, stride, downsample)]
            specs += [(planes * expansion, planes, 1, None)] * (num_blocks - 1)
        else:
            specs = [(inplanes, inplanes, 1, None)] * (num_blocks - 1)
            specs += [(inplanes, planes, stride, downsample)]
        layers = [
            block(
                inplanes=inp,
                planes=out,
                stride=s,
                downsample=down,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                **(first_extra if i == 0 else extra),
            )
            for i, (inp, out, s, down) in enumerate(specs)
        ]
        super().__init__(*layers)

    def init_weights(self) -> None:
        """Let each block apply its own ``init_cfg``."""
        apply_init_cfg(self, None)
