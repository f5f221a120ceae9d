"""``HRNet``: parallel multi-resolution branches with repeated fusion (MMDetection v2 layout).

Wang et al., "Deep High-Resolution Representation Learning for Visual Recognition", 2019
(HRNetV2p for detection). A stem (two 3x3 stride-2 convs) feeds stage 1 (one branch of
residual blocks); each following stage adds a branch at half the resolution (a 3x3 stride-2
conv, the ``transition``) and runs ``num_modules`` :class:`HRModule` s: per branch a few
residual blocks, then every output branch sums all branches, resampled to its resolution
(1x1 conv + nearest upsampling from lower resolutions; chains of 3x3 stride-2 convs from
higher ones).

Keys are v2's: ``conv1``/``bn1``/``conv2``/``bn2`` stem, ``layer1.{j}.*``,
``transition{s}.{i}.{0,1}`` (or ``.{k}.{0,1}`` chains), ``stage{s}.{m}.branches.{b}.{j}.*``,
``stage{s}.{m}.fuse_layers.{i}.{j}.*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones.resnet import _default_init_cfg
from detforge.models.layers import (
    ResLayer,
    apply_init_cfg,
    batch_norms_to_eval,
    build_conv_layer,
    build_norm_layer,
)
from detforge.models.layers.res_layer import BasicBlock, Bottleneck
from detforge.registry import MODELS, Cfg

__all__ = ["HRModule", "HRNet"]

_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "BASIC": BasicBlock,
    "BOTTLENECK": Bottleneck,
}
_STAGE_KEYS = ("num_modules", "num_branches", "block", "num_blocks", "num_channels")


def _conv_norm(
    conv_cfg: Cfg | None,
    norm_cfg: Cfg,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    relu: bool = False,
) -> nn.Sequential:
    """``Sequential(conv (no bias), norm[, ReLU])`` with ``same`` padding."""
    layers = [
        build_conv_layer(
            conv_cfg,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=False,
        ),
        build_norm_layer(norm_cfg, out_channels)[1],
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _branch(
    block: type[nn.Module],
    in_channels: int,
    channels: int,
    num_blocks: int,
    conv_cfg: Cfg | None,
    norm_cfg: Cfg,
    with_cp: bool,
) -> ResLayer:
    """``num_blocks`` residual blocks at one resolution (a 1x1 shortcut where channels change)."""
    return ResLayer(
        block,
        in_channels,
        channels,
        num_blocks,
        conv_cfg=conv_cfg,
        norm_cfg=norm_cfg,
        block_args={"with_cp": with_cp},
    )


def _module_list(items: Sequence[nn.Module | None]) -> nn.ModuleList:
    """A ``ModuleList`` that keeps ``None`` entries, so indices (and keys) are v2's."""
    modules = nn.ModuleList()
    for i, item in enumerate(items):
        modules.add_module(str(i), item)
    return modules


class HRModule(nn.Module):
    """One multi-resolution module: parallel branches of residual blocks, then fusion.

    Args:
        num_branches: Number of parallel branches (resolutions).
        blocks: Residual block class of the branches.
        num_blocks: Blocks per branch.
        in_channels: Input channels per branch.
        num_channels: Block channels per branch (output: ``num_channels * expansion``).
        multiscale_output: Fuse into every branch; False fuses into the highest-resolution
            branch only and returns that one.
        with_cp: Gradient checkpointing in the residual blocks.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.

    Example:
        >>> m = HRModule(2, BasicBlock, (1, 1), [4, 8], (4, 8)).eval()
        >>> [tuple(y.shape) for y in m([torch.rand(1, 4, 8, 8), torch.rand(1, 8, 4, 4)])]
        [(1, 4, 8, 8), (1, 8, 4, 4)]
    """

    def __init__(
        self,
        num_branches: int,
        blocks: type[nn.Module],
        num_blocks: Sequence[int],
        in_channels: Sequence[int],
        num_channels: Sequence[int],
        multiscale_output: bool = True,
        with_cp: bool = False,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = {"type": "BN"},  # noqa: B006 (never mutated)
    ) -> None:
        super().__init__()
        for what, values in (
            ("num_blocks", num_blocks),
            ("num_channels", num_channels),
            ("in_channels", in_channels),
        ):
            if len(values) != num_branches:
                raise ValueError(
                    f"HRModule: num_branches={num_branches} but {what} has {len(values)} "
                    f"entries ({tuple(values)})"
                )
        expansion: int = getattr(blocks, "expansion", 1)
        self.num_branches = num_branches
        self.multiscale_output = multiscale_output
        self.with_cp = with_cp
        self.branches = nn.ModuleList(
            _branch(blocks, cin, c, n, conv_cfg, norm_cfg, with_cp)
            for cin, c, n in zip(in_channels, num_channels, num_blocks, strict=True)
        )
        self.in_channels = [c * expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers(conv_cfg, norm_cfg)
        self.relu = nn.ReLU(inplace=False)

    def _make_fuse_layers(self, conv_cfg: Cfg | None, norm_cfg: Cfg) -> nn.ModuleList | None:
        """``fuse_layers[i][j]`` resamples branch ``j`` to branch ``i`` (``None`` if ``i == j``)."""
        if self.num_branches == 1:
            return None
        chans = self.in_channels
        fuse_layers = nn.ModuleList()
        for i in range(self.num_branches if self.multiscale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:  # lower resolution: 1x1 conv, then nearest upsampling
                    up = _conv_norm(conv_cfg, norm_cfg, chans[j], chans[i], 1)
                    up.append(nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
                    row.append(up)
                elif j == i:
                    row.append(None)
                else:  # higher resolution: i - j stride-2 3x3 convs, ReLU between them
                    steps = [
                        _conv_norm(conv_cfg, norm_cfg, chans[j], chans[j], 3, stride=2, relu=True)
                        for _ in range(i - j - 1)
                    ]
                    steps.append(_conv_norm(conv_cfg, norm_cfg, chans[j], chans[i], 3, stride=2))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(_module_list(row))
        return fuse_layers

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        """One feature map per branch (highest resolution first) -> the fused maps."""
        if len(x) != self.num_branches:
            raise ValueError(f"HRModule: expected {self.num_branches} inputs, got {len(x)}")
        x = [branch(xi) for branch, xi in zip(self.branches, x, strict=True)]
        if self.fuse_layers is None:
            return x
        out = []
        for i, row in enumerate(self.fuse_layers):
            layers = cast(nn.ModuleList, row)
            # summed in branch order, as v2 does (float addition is not associative)
            terms = [x[j] if j == i else layers[j](x[j]) for j in range(self.num_branches)]
            y = terms[0]
            for term in terms[1:]:
                y = y + term
            out.append(self.relu(y))
        return out


@MODELS.register_module()
class HRNet(nn.Module):
    """HRNet backbone (MMDetection v2 ``HRNet``).

    Args:
        extra: The four stages, ``extra['stage1']`` ... ``extra['stage4']``, each a dict of
            ``num_modules``, ``num_branches`` (stage ``s`` usually has ``s``), ``block``
            (``'BASIC'`` or ``'BOTTLENECK'``), ``num_blocks`` and ``num_channels`` (one entry
            per branch).
        in_channels: Image channels.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        norm_eval: Keep batch-norm layers in eval mode during training.
        with_cp: Gradient checkpointing in the residual blocks.
        zero_init_residual: Accepted for v2 compatibility. v2.28's HRNet never applies it
            (its check ``not hasattr(self, 'init_cfg')`` is always false), and neither does
            detforge.
        multiscale_output: Return every branch of the last stage (False: the
            highest-resolution one only).
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: Initialisation config; the default is Kaiming for convs and 1/0 for norms.

    Example:
        >>> import torch
        >>> extra = dict(
        ...     stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
        ...                 num_blocks=(1,), num_channels=(8,)),
        ...     stage2=dict(num_modules=1, num_branches=2, block='BASIC',
        ...                 num_blocks=(1, 1), num_channels=(4, 8)),
        ...     stage3=dict(num_modules=1, num_branches=3, block='BASIC',
        ...                 num_blocks=(1, 1, 1), num_channels=(4, 8, 16)),
        ...     stage4=dict(num_modules=1, num_branches=4, block='BASIC',
        ...                 num_blocks=(1, 1, 1, 1), num_channels=(4, 8, 16, 32)))
        >>> net = HRNet(extra=extra).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 64, 64))]
        [(1, 4, 16, 16), (1, 8, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2)]
    """

    def __init__(
        self,
        extra: Mapping[str, Mapping[str, Any]],
        in_channels: int = 3,
        conv_cfg: Cfg | None = None,
        norm_cfg: Cfg = {"type": "BN"},  # noqa: B006 (never mutated)
        norm_eval: bool = True,
        with_cp: bool = False,
        zero_init_residual: bool = False,
        multiscale_output: bool = True,
        pretrained: str | None = None,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        stages = _check_extra(extra)
        # no block init: v2's HRNet never zero-initialises residual norms (see above)
        self.init_cfg, _ = _default_init_cfg("HRNet", BasicBlock, pretrained, init_cfg, False)
        self.extra = extra
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.multiscale_output = multiscale_output

        # stem: two 3x3 stride-2 convs to 64 channels
        self.conv1 = build_conv_layer(conv_cfg, in_channels, 64, 3, stride=2, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, 64, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, 64, 64, 3, stride=2, padding=1, bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, 64, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)

        s1 = stages[0]
        block1 = _BLOCKS[s1["block"]]
        self.layer1 = _branch(
            block1, 64, s1["num_channels"][0], s1["num_blocks"][0], conv_cfg, norm_cfg, with_cp
        )
        channels = [s1["num_channels"][0] * block1.expansion]
        self.stage_branches: list[int] = []  # branches of stages 2, 3, 4
        for s, cfg in enumerate(stages[1:], start=2):
            block = _BLOCKS[cfg["block"]]
            stage_channels = [c * block.expansion for c in cfg["num_channels"]]
            self.add_module(f"transition{s - 1}", self._make_transition(channels, stage_channels))
            modules = []
            for m in range(cfg["num_modules"]):
                module = HRModule(
                    cfg["num_branches"],
                    block,
                    cfg["num_blocks"],
                    stage_channels,
                    cfg["num_channels"],
                    # only the very last module may fuse into a single output
                    multiscale_output=multiscale_output or s < 4 or m < cfg["num_modules"] - 1,
                    with_cp=with_cp,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                )
                modules.append(module)
                stage_channels = module.in_channels
            self.add_module(f"stage{s}", nn.Sequential(*modules))
            self.stage_branches.append(cfg["num_branches"])
            channels = stage_channels

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _make_transition(self, pre: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
        """Branch ``i`` of the next stage: an existing branch (3x3 conv if its channels change,
        else ``None``), or a new one from the lowest-resolution branch by stride-2 3x3 convs."""
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(pre):
                same = c == pre[i]
                conv = _conv_norm(self.conv_cfg, self.norm_cfg, pre[i], c, 3, relu=True)
                layers.append(None if same else conv)
            else:
                steps = [
                    _conv_norm(
                        self.conv_cfg,
                        self.norm_cfg,
                        pre[-1],
                        c if k == i - len(pre) else pre[-1],
                        3,
                        stride=2,
                        relu=True,
                    )
                    for k in range(i + 1 - len(pre))
                ]
                layers.append(nn.Sequential(*steps))
        return _module_list(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Tensor[B, C, H, W]`` -> one map per branch of the last stage (stride 4·2^i)."""
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        ys = [self.layer1(x)]
        for s, num_branches in enumerate(self.stage_branches, start=1):
            transition = getattr(self, f"transition{s}")
            xs = []
            for i in range(num_branches):
                # a new branch grows from the lowest-resolution one. (v2 feeds ys[-1] to every
                # transition; it differs from ys[i] only where v2 fails on the shapes)
                src = ys[i] if i < len(ys) else ys[-1]
                xs.append(src if transition[i] is None else transition[i](src))
            ys = getattr(self, f"stage{s + 1}")(xs)
        return ys

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmcv ``BaseModule.init_weights`` semantics)."""
        apply_init_cfg(self, self.init_cfg)

    def train(self, mode: bool = True) -> HRNet:
        """Set training mode, keeping batch norms in eval mode with ``norm_eval``."""
        super().train(mode)
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self


def _check_extra(extra: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``[extra['stage1'], ..., extra['stage4']]``, validated; errors name the stage and key."""
    stages = []
    for s in range(1, 5):
        name = f"stage{s}"
        if name not in extra:
            raise ConfigKeyError(f"HRNet: extra lacks {name!r} (it needs stage1 ... stage4)")
        cfg = extra[name]
        missing = [k for k in _STAGE_KEYS if k not in cfg]
        if missing:
            raise ConfigKeyError(f"HRNet: extra[{name!r}] lacks {missing}")
        if cfg["block"] not in _BLOCKS:
            raise ConfigKeyError(
                f"HRNet: extra[{name!r}]['block'] is {cfg['block']!r}; choose from {list(_BLOCKS)}"
            )
        n = cfg["num_branches"]
        for key in ("num_blocks", "num_channels"):
            if len(cfg[key]) != n:
                raise ValueError(
                    f"HRNet: extra[{name!r}][{key!r}] = {tuple(cfg[key])} needs num_branches={n} "
                    "entries"
                )
        stages.append(cfg)
    return stages
