"""ResNet backbones (``ResNet``, ``ResNetV1d``) with MMDetection v2's layout and defaults.

State-dict keys are MMDetection's: ``conv1``/``bn1`` (or ``stem.0``…``stem.7`` with a deep
stem), ``layer{i}.{j}.conv{k}``/``bn{k}``, ``layer{i}.0.downsample.0``/``.1`` (``.1``/``.2``
with ``avg_down``); a norm layer is named after its type (``gn1`` with GN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones._common import backbone_init_cfg
from detforge.models.layers import (
    ResLayer,
    apply_init_cfg,
    batch_norms_to_eval,
    build_conv_layer,
    build_norm_layer,
)
from detforge.models.layers.res_layer import BasicBlock, Bottleneck
from detforge.registry import MODELS, Cfg, plain_cfg

__all__ = ["TRAINABLE_BN", "BasicBlock", "Bottleneck", "ResNet", "ResNetV1d"]

#: BatchNorm with trainable affine parameters: the backbones' default norm layer
TRAINABLE_BN: Cfg = MappingProxyType({"type": "BN", "requires_grad": True})

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@MODELS.register_module()
class ResNet(nn.Module):
    """ResNet backbone (MMDetection v2 ``ResNet``).

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: Image channels.
        stem_channels: Stem output channels (default ``base_channels``).
        base_channels: Channels of the first stage (doubled per stage, × 4 for Bottleneck).
        num_stages: Stages built, 1–4.
        strides: Stride of each stage.
        dilations: Dilation of each stage.
        out_indices: Stages whose outputs are returned.
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on the first 1x1).
        deep_stem: Three 3x3 convs (``stem.*``) instead of one 7x7 conv.
        avg_down: Downsample shortcuts with average pooling then a stride-1 conv.
        frozen_stages: Stages to freeze (0 = the stem only, -1 = nothing): no gradients and
            eval mode, kept through ``train()``.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config (``requires_grad=False`` freezes all norm affines).
        norm_eval: Keep batch-norm layers in eval mode during training.
        dcn: Deformable conv config for the 3x3 convs of the stages in ``stage_with_dcn``.
        stage_with_dcn: Per stage, whether it uses ``dcn``.
        plugins: Plugin layers of the Bottleneck blocks (v2): a list of
            ``dict(cfg=dict(type='ContextBlock', ...), position='after_conv3',
            stages=(False, True, True, True))``; ``stages`` (default: all) picks the stages,
            ``position`` is ``after_conv1``/``after_conv2``/``after_conv3``, and
            ``cfg['postfix']`` tells apart plugins of one type. See :meth:`make_stage_plugins`.
        with_cp: Gradient checkpointing of the residual branches.
        zero_init_residual: With the default init, zero the last norm of each block.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: Initialisation config used by :meth:`init_weights`; the default is Kaiming
            for convs and 1/0 for norm layers (plus ``zero_init_residual``).

    Weights are initialised by :meth:`init_weights` (as in v2, which the trainer calls), not
    by the constructor.

    Example:
        >>> net = ResNet(depth=18, base_channels=8).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 8, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2), (1, 64, 1, 1)]
    """

    # extra arguments of each stage's first block (Res2Net's ``stage_type='stage'``)
    first_block_args: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    arch_settings: ClassVar[dict[int, tuple[type[nn.Module], tuple[int, ...]]]] = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(
        self,
        depth: int,
        in_channels: int = 3,
        stem_channels: int | None = None,
        base_channels: int = 64,
        num_stages: int = 4,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = "pytorch",
        deep_stem: bool = False,
        avg_down: bool = False,
        frozen_stages: int = -1,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = TRAINABLE_BN,
        norm_eval: bool = True,
        dcn: Cfg | None = None,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        plugins: Sequence[Mapping[str, Any]] | None = None,
        with_cp: bool = False,
        zero_init_residual: bool = True,
        pretrained: str | None = None,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.block, stage_plan = self._stage_plan(depth, base_channels)
        _check_stages(name, num_stages, strides, dilations, out_indices, dcn, stage_with_dcn)
        if frozen_stages > num_stages:
            raise ValueError(f"{name}: frozen_stages={frozen_stages} > num_stages={num_stages}")
        if style not in ("pytorch", "caffe"):
            raise ValueError(f"{name}: style must be 'pytorch' or 'caffe', got {style!r}")
        self.init_cfg, block_init_cfg = _default_init_cfg(
            name, self.block, pretrained, init_cfg, zero_init_residual
        )
        stem_channels = base_channels if stem_channels is None else stem_channels
        self.depth = depth
        self.zero_init_residual = zero_init_residual
        self.stem_channels = stem_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.out_indices = tuple(out_indices)
        self.style = style
        self.deep_stem = deep_stem
        self.avg_down = avg_down
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = plain_cfg(norm_cfg)
        self.with_cp = with_cp
        self.norm_eval = norm_eval
        self.dcn = dcn
        self.stage_with_dcn = tuple(stage_with_dcn)
        self.plugins = None if plugins is None else list(plugins)
        self.stage_blocks = tuple(num_blocks for _, num_blocks in stage_plan[:num_stages])
        stage_plugins = [
            None if plugins is None else self.make_stage_plugins(plugins, i)
            for i in range(num_stages)
        ]

        self._make_stem_layer(in_channels, stem_channels)
        self.res_layers: list[str] = []
        inplanes = stem_channels
        expansion: int = getattr(self.block, "expansion", 1)
        for i, (planes, num_blocks) in enumerate(stage_plan[:num_stages]):
            # plugins are only passed when configured, so subclasses without plugin support
            # keep their make_res_layer signature
            extra = self._stage_args(i)
            if stage_plugins[i] is not None:
                extra["plugins"] = stage_plugins[i]
            layer = self.make_res_layer(
                inplanes=inplanes,
                planes=planes,
                num_blocks=num_blocks,
                stride=self.strides[i],
                dilation=self.dilations[i],
                dcn=dcn if self.stage_with_dcn[i] else None,
                init_cfg=block_init_cfg,
                stage=i,
                **extra,
            )
            inplanes = planes * expansion
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")
        self.feat_dim = inplanes
        self._freeze_stages()

    def _stage_plan(
        self, depth: int, base_channels: int
    ) -> tuple[type[nn.Module], list[tuple[int, int]]]:
        """``(block class, [(planes, num_blocks) per stage])`` of ``depth`` (a RegNet's come
        from its ``arch`` instead)."""
        if depth not in self.arch_settings:
            raise ConfigKeyError(
                f"invalid depth {depth} for {type(self).__name__}; "
                f"choose from {sorted(self.arch_settings)}"
            )
        block, stage_blocks = self.arch_settings[depth]
        return block, [(base_channels * 2**i, n) for i, n in enumerate(stage_blocks)]

    def _block_args(self, stage: int) -> dict[str, Any]:
        """Extra block arguments of a subclass for stage ``stage`` (ResNeXt's ``groups``,
        ``base_width``; RegNet's per-stage groups)."""
        return {}

    def _stage_args(self, stage_idx: int) -> dict[str, Any]:
        """Extra :meth:`make_res_layer` arguments of a subclass for one stage (DetectoRS)."""
        return {}

    def make_stage_plugins(
        self, plugins: Sequence[Mapping[str, Any]], stage_idx: int
    ) -> list[dict[str, Any]]:
        """The plugin specs ``dict(cfg=..., position=...)`` of stage ``stage_idx`` (v2).

        A plugin without ``stages`` goes into every stage.

        Raises:
            ValueError: a spec is not a dict with ``cfg`` and ``position`` (and optionally
                ``stages``), or its ``stages`` does not have ``num_stages`` entries.

        Example:
            >>> net = ResNet(depth=50, base_channels=8)
            >>> specs = [dict(cfg=dict(type='ContextBlock', ratio=0.5), position='after_conv3',
            ...               stages=(False, True, True, True))]
            >>> [len(net.make_stage_plugins(specs, i)) for i in range(4)]
            [0, 1, 1, 1]
        """
        name = type(self).__name__
        if not isinstance(plugins, list | tuple):
            raise ValueError(f"{name}: plugins must be a list of dicts, got {plugins!r}")
        chosen = []
        for spec in plugins:
            if not isinstance(spec, Mapping):
                raise ValueError(f"{name}: each plugin must be a dict, got {spec!r}")
            extra = sorted(set(spec) - {"cfg", "position", "stages"})
            if extra:
                raise ValueError(f"{name}: plugin {dict(spec)!r} has unexpected keys {extra}")
            spec = dict(spec)
            stages = spec.pop("stages", None)
            if stages is not None and len(stages) != self.num_stages:
                raise ValueError(
                    f"{name}: plugin stages {tuple(stages)} needs num_stages={self.num_stages} "
                    "entries"
                )
            if stages is None or stages[stage_idx]:
                chosen.append(spec)
        return chosen

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
    ) -> nn.Module:
        """Build stage ``stage`` (a :class:`~detforge.models.layers.ResLayer` of
        ``self.block``)."""
        args = {"dilation": dilation, "dcn": dcn, "plugins": plugins, "init_cfg": init_cfg}
        return self._res_layer(inplanes, planes, num_blocks, stride, args, stage=stage)

    def _res_layer(
        self,
        inplanes: int,
        planes: int,
        num_blocks: int,
        stride: int,
        block_args: Mapping[str, Any],
        first_block_args: Mapping[str, Any] | None = None,
        stage: int = 0,
    ) -> ResLayer:
        """Stage ``stage`` of ``self.block`` with the backbone's style, checkpointing, conv and
        norm; ``first_block_args`` go to its first block on top of the class's own."""
        return ResLayer(
            self.block,
            inplanes,
            planes,
            num_blocks,
            stride=stride,
            avg_down=self.avg_down,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            block_args={
                "style": self.style,
                "with_cp": self.with_cp,
                **block_args,
                **self._block_args(stage),
            },
            first_block_args={**self.first_block_args, **(first_block_args or {})},
        )

    @property
    def norm1(self) -> nn.Module:
        """The stem's norm layer (without ``deep_stem``)."""
        return getattr(self, self.norm1_name)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            half = stem_channels // 2
            layers: list[nn.Module] = []
            for cin, cout, stride in (
                (in_channels, half, 2),
                (half, half, 1),
                (half, stem_channels, 1),
            ):
                layers.append(
                    build_conv_layer(
                        self.conv_cfg,
                        cin,
                        cout,
                        kernel_size=3,
                        stride=stride,
                        padding=1,
                        bias=False,
                    )
                )
                layers.append(build_norm_layer(self.norm_cfg, cout)[1])
                layers.append(nn.ReLU(inplace=True))
            self.stem = nn.Sequential(*layers)
        else:
            self.conv1 = build_conv_layer(
                self.conv_cfg,
                in_channels,
                stem_channels,
                kernel_size=7,
                stride=2,
                padding=3,
                bias=False,
            )
            self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _freeze_stages(self) -> None:
        frozen: list[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen += [self.stem] if self.deep_stem else [self.conv1, self.norm1]
        frozen += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Tensor[B, C, H, W]`` -> one feature map per ``out_indices`` entry (stride 4·2^i)."""
        x = self.stem(x) if self.deep_stem else self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> ResNet:
        """Set training mode, keeping frozen stages (and BN with ``norm_eval``) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self


def _check_stages(
    name: str,
    num_stages: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    out_indices: Sequence[int],
    dcn: Cfg | None,
    stage_with_dcn: Sequence[bool],
) -> None:
    if not 1 <= num_stages <= 4:
        raise ValueError(f"{name}: num_stages must be in 1..4, got {num_stages}")
    if not len(strides) == len(dilations) == num_stages:
        raise ValueError(
            f"{name}: strides {tuple(strides)} and dilations {tuple(dilations)} need "
            f"num_stages={num_stages} entries each"
        )
    if not out_indices or max(out_indices) >= num_stages or min(out_indices) < 0:
        raise ValueError(
            f"{name}: out_indices {tuple(out_indices)} must lie in 0..{num_stages - 1}"
        )
    if dcn is not None and len(stage_with_dcn) != num_stages:
        raise ValueError(
            f"{name}: stage_with_dcn {tuple(stage_with_dcn)} needs num_stages={num_stages} entries"
        )


def _default_init_cfg(
    name: str,
    block: type[nn.Module],
    pretrained: str | None,
    init_cfg: _InitCfg,
    zero_init_residual: bool,
) -> tuple[_InitCfg, _InitCfg]:
    """``(backbone init_cfg, block init_cfg)`` as MMDetection v2's ResNet derives them."""
    default: list[dict[str, Any]] = [
        {"type": "Kaiming", "layer": "Conv2d"},
        {"type": "Constant", "val": 1, "layer": ["_BatchNorm", "GroupNorm"]},
    ]
    resolved = backbone_init_cfg(name, pretrained, init_cfg, default, stacklevel=4)
    if resolved is not default or not zero_init_residual:
        return resolved, None
    last_norm = "norm2" if block is BasicBlock else "norm3"
    return default, {"type": "Constant", "val": 0, "override": {"name": last_norm}}


@MODELS.register_module()
class ResNetV1d(ResNet):
    """ResNet-D (``Bag of Tricks``): ``ResNet`` with ``deep_stem=True`` and ``avg_down=True``.

    Takes the arguments of :class:`ResNet` except ``deep_stem`` and ``avg_down``.

    Example:
        >>> net = ResNetV1d(depth=18, base_channels=8)
        >>> [k for k in net.state_dict() if k.startswith('layer2.0.downsample')][:2]
        ['layer2.0.downsample.1.weight', 'layer2.0.downsample.2.weight']
    """

    def __init__(
        self,
        depth: int,
        in_channels: int = 3,
        stem_channels: int | None = None,
        base_channels: int = 64,
        num_stages: int = 4,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = "pytorch",
        frozen_stages: int = -1,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = TRAINABLE_BN,
        norm_eval: bool = True,
        dcn: Cfg | None = None,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        plugins: Any = None,
        with_cp: bool = False,
        zero_init_residual: bool = True,
        pretrained: str | None = None,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__(
            depth,
            in_channels=in_channels,
            stem_channels=stem_channels,
            base_channels=base_channels,
            num_stages=num_stages,
            strides=strides,
            dilations=dilations,
            out_indices=out_indices,
            style=style,
            deep_stem=True,
            avg_down=True,
            frozen_stages=frozen_stages,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            norm_eval=norm_eval,
            dcn=dcn,
            stage_with_dcn=stage_with_dcn,
            plugins=plugins,
            with_cp=with_cp,
            zero_init_residual=zero_init_residual,
            pretrained=pretrained,
            init_cfg=init_cfg,
        )
