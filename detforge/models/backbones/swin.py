"""``SwinTransformer`` backbone (MMDetection v2's ``mmdet/models/backbones/swin.py``).

State-dict keys are v2's: ``patch_embed.projection``/``patch_embed.norm``,
``stages.{i}.blocks.{j}.{norm1, attn.w_msa.{qkv, proj, relative_position_bias_table,
relative_position_index}, norm2, ffn.layers.{0.0, 1}}``, ``stages.{i}.downsample.{norm,
reduction}`` and one ``norm{i}`` per output. ``relative_position_index`` is a (persistent)
buffer, as in v2.

Numerics: window attention with a learned relative position bias per head; odd blocks shift
the windows by ``window_size // 2`` (``torch.roll``) and mask token pairs from different
regions with -100 before the softmax; a map whose sides are not multiples of the window is
zero-padded bottom/right. Patch merging is ``nn.Unfold`` based (see
:class:`~detforge.models.layers.transformer.PatchMerging`), so checkpoints of the original Swin
repository need ``convert_weights=True`` (:func:`swin_converter`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from detforge.errors import ConfigKeyError
from detforge.models.backbones._common import backbone_init_cfg, pretrained_checkpoint
from detforge.models.layers import build_norm_layer, constant_init, trunc_normal_init
from detforge.models.layers.transformer import (
    FFN,
    PatchEmbed,
    PatchMerging,
    build_dropout,
    to_2tuple,
)
from detforge.registry import MODELS, Cfg
from detforge.utils.checkpoint import CheckpointError, load_state_dict, read_checkpoint

__all__ = ["ShiftWindowMSA", "SwinBlock", "SwinBlockSequence", "SwinTransformer", "WindowMSA"]

_LOG = logging.getLogger("detforge")
_GELU = MappingProxyType({"type": "GELU"})
_LN = MappingProxyType({"type": "LN"})
_InitCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_MASK_FILL = -100.0  # v2's value for token pairs of different shifted regions


def relative_position_index(window_size: tuple[int, int]) -> torch.Tensor:
    """``LongTensor[Wh*Ww, Wh*Ww]``: row of the bias table for each (query, key) pair.

    For tokens ``(hi, wi)`` and ``(hj, wj)`` the row is
    ``(hi - hj + Wh - 1) * (2 * Ww - 1) + (wi - wj + Ww - 1)``.

    Example:
        >>> relative_position_index((2, 2)).tolist()
        [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    """
    wh, ww = window_size
    rows = torch.arange(wh).repeat_interleave(ww)
    cols = torch.arange(ww).repeat(wh)
    d_row = rows[:, None] - rows[None, :] + wh - 1
    d_col = cols[:, None] - cols[None, :] + ww - 1
    return d_row * (2 * ww - 1) + d_col


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``Tensor[B, H, W, C]`` -> ``Tensor[B * H/w * W/w, w, w, C]`` (windows row-major)."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window, window, channels)


def window_reverse(windows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``-> Tensor[B, H, W, C]``."""
    window = windows.shape[1]
    batch = windows.shape[0] // ((height // window) * (width // window))
    x = windows.view(batch, height // window, width // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(batch, height, width, -1)


class WindowMSA(nn.Module):
    """Multi-head self-attention inside windows, with a relative position bias.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        window_size: ``(Wh, Ww)``.
        qkv_bias: Bias of the ``qkv`` projection.
        qk_scale: Query scale (default ``head_dims ** -0.5``).
        attn_drop_rate: Dropout on the attention weights.
        proj_drop_rate: Dropout after ``proj``.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        window_size: tuple[int, int],
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        wh, ww = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``Tensor[nW*B, N, C]`` (``N = Wh*Ww``) -> same shape; ``mask``: ``[nW, N, N]``."""
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        index: torch.Tensor = self.relative_position_index  # type: ignore[assignment]
        bias = self.relative_position_bias_table[index.view(-1)].view(tokens, tokens, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.view(batch // windows, windows, self.num_heads, tokens, tokens)
            attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, tokens, tokens)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(batch, tokens, channels)
        return self.proj_drop(self.proj(x))


class ShiftWindowMSA(nn.Module):
    """:class:`WindowMSA` (``w_msa``) over (shifted) windows of a token map.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        window_size: Window side.
        shift_size: Cyclic shift towards the bottom right (0: plain windows).
        qkv_bias: Bias of the ``qkv`` projection.
        qk_scale: Query scale override.
        attn_drop_rate: Dropout on the attention weights.
        proj_drop_rate: Dropout after the output projection.
        dropout_layer: Applied to the output (``DropPath``).
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        window_size: int,
        shift_size: int = 0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        dropout_layer: Cfg | None = MappingProxyType({"type": "DropPath", "drop_prob": 0.0}),
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size {shift_size} must lie in [0, window_size={window_size})")
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowMSA(
            embed_dims=embed_dims,
            num_heads=num_heads,
            window_size=to_2tuple(window_size),
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop_rate=attn_drop_rate,
            proj_drop_rate=proj_drop_rate,
        )
        self.drop = build_dropout(dropout_layer)

    def _shift_mask(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``[nW, w*w, w*w]``: 0 for pairs of one region of the shifted map, -100 otherwise."""
        w, s = self.window_size, self.shift_size
        regions = torch.zeros((1, height, width, 1), device=device)
        bounds = (slice(0, -w), slice(-w, -s), slice(-s, None))
        label = 0
        for rows in bounds:
            for cols in bounds:
                regions[:, rows, cols, :] = label
                label += 1
        ids = window_partition(regions, w).view(-1, w * w)
        differ = ids.unsqueeze(1) != ids.unsqueeze(2)
        return torch.zeros(differ.shape, device=device).masked_fill(differ, _MASK_FILL)

    def forward(self, query: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        batch, length, channels = query.shape
        height, width = hw_shape
        if length != height * width:
            raise ValueError(f"ShiftWindowMSA: {length} tokens for a {height}x{width} map")
        w = self.window_size
        x = query.view(batch, height, width, channels)
        pad_r, pad_b = (w - width % w) % w, (w - height % w) % w
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        h_pad, w_pad = int(x.shape[1]), int(x.shape[2])
        mask = None
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            mask = self._shift_mask(h_pad, w_pad, query.device)
        windows = window_partition(x, w).view(-1, w * w, channels)
        windows = self.w_msa(windows, mask=mask).view(-1, w, w, channels)
        x = window_reverse(windows, h_pad, w_pad)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = x[:, :height, :width, :].reshape(batch, height * width, channels)
        return self.drop(x)


class SwinBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + ffn(norm2(x))`` (pre-norm Swin block).

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        feedforward_channels: Hidden channels of the FFN.
        window_size: Window side.
        shift: Shift the windows by ``window_size // 2``.
        qkv_bias: Bias of the ``qkv`` projection.
        qk_scale: Query scale override.
        drop_rate: Dropout after the projections.
        attn_drop_rate: Dropout on the attention weights.
        drop_path_rate: Stochastic depth of both branches.
        act_cfg: FFN activation.
        norm_cfg: Norm layers.
        with_cp: Gradient checkpointing of the block.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        feedforward_channels: int,
        window_size: int = 7,
        shift: bool = False,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        act_cfg: Cfg = _GELU,
        norm_cfg: Cfg = _LN,
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        self.with_cp = with_cp
        drop_path = {"type": "DropPath", "drop_prob": drop_path_rate}
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowMSA(
            embed_dims=embed_dims,
            num_heads=num_heads,
            window_size=window_size,
            shift_size=window_size // 2 if shift else 0,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop_rate=attn_drop_rate,
            proj_drop_rate=drop_rate,
            dropout_layer=drop_path,
        )
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=drop_rate,
            dropout_layer=drop_path,
            act_cfg=act_cfg,
            add_identity=True,
        )

    def _inner(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), hw_shape)
        return self.ffn(self.norm2(x), identity=x)

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out: torch.Tensor = cp.checkpoint(self._inner, x, hw_shape, use_reentrant=False)
            return out
        return self._inner(x, hw_shape)


class SwinBlockSequence(nn.Module):
    """One Swin stage: ``depth`` blocks (odd ones shifted), then an optional downsample.

    ``forward`` returns ``(x after downsample, its hw, x before downsample, its hw)``.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        feedforward_channels: Hidden channels of the FFNs.
        depth: Blocks.
        window_size: Window side.
        qkv_bias: Bias of the ``qkv`` projections.
        qk_scale: Query scale override.
        drop_rate: Dropout after the projections.
        attn_drop_rate: Dropout on the attention weights.
        drop_path_rate: Stochastic depth, one value or one per block.
        downsample: Patch merging after the blocks (``None``: none).
        act_cfg: FFN activation.
        norm_cfg: Norm layers.
        with_cp: Gradient checkpointing of each block.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        feedforward_channels: int,
        depth: int,
        window_size: int = 7,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float | Sequence[float] = 0.0,
        downsample: nn.Module | None = None,
        act_cfg: Cfg = _GELU,
        norm_cfg: Cfg = _LN,
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        rates = (
            [float(drop_path_rate)] * depth
            if isinstance(drop_path_rate, int | float)
            else list(drop_path_rate)
        )
        if len(rates) != depth:
            raise ValueError(f"SwinBlockSequence: {len(rates)} drop path rates for {depth} blocks")
        self.blocks = nn.ModuleList(
            SwinBlock(
                embed_dims=embed_dims,
                num_heads=num_heads,
                feedforward_channels=feedforward_channels,
                window_size=window_size,
                shift=i % 2 == 1,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate,
                drop_path_rate=rates[i],
                act_cfg=act_cfg,
                norm_cfg=norm_cfg,
                with_cp=with_cp,
            )
            for i in range(depth)
        )
        self.downsample = downsample

    def forward(
        self, x: torch.Tensor, hw_shape: tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor, tuple[int, int]]:
        for block in self.blocks:
            x = block(x, hw_shape)
        if self.downsample is None:
            return x, hw_shape, x, hw_shape
        x_down, down_hw = self.downsample(x, hw_shape)
        return x_down, down_hw, x, hw_shape


@MODELS.register_module()
class SwinTransformer(nn.Module):
    """Swin Transformer backbone (MMDetection v2 ``SwinTransformer``).

    Args:
        pretrain_img_size: Image size of pre-training (sizes ``absolute_pos_embed``).
        in_channels: Image channels.
        embed_dims: Channels of the first stage (doubled by each patch merging).
        patch_size: Side of the patchifying conv (must equal ``strides[0]``).
        window_size: Attention window side.
        mlp_ratio: FFN hidden channels / token channels.
        depths: Blocks per stage.
        num_heads: Attention heads per stage.
        strides: Patch embedding stride, then each patch merging's.
        out_indices: Stages whose (normed, ``norm{i}``) outputs are returned.
        qkv_bias: Bias of the ``qkv`` projections.
        qk_scale: Query scale override.
        patch_norm: LayerNorm in patch embedding and merging.
        drop_rate: Dropout rate.
        attn_drop_rate: Attention dropout rate.
        drop_path_rate: Stochastic depth, rising linearly to this over all blocks.
        use_abs_pos_embed: Add a learned absolute position embedding after patch embedding.
        act_cfg: FFN activation.
        norm_cfg: Norm layers.
        with_cp: Gradient checkpointing of the blocks.
        pretrained: Deprecated; becomes ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        convert_weights: The pretrained checkpoint comes from the original Swin repository
            (keys and patch-merging channel order are converted by :func:`swin_converter`).
        frozen_stages: Freeze the patch embedding (0) and stages ``1..frozen_stages``.
        init_cfg: ``None`` (truncated normal Linear, unit LayerNorm) or
            ``dict(type='Pretrained', checkpoint=...)``.

    Example:
        >>> net = SwinTransformer(embed_dims=8, depths=(2, 2), num_heads=(1, 2), strides=(4, 2),
        ...                       window_size=2, out_indices=(0, 1)).eval()
        >>> [tuple(f.shape) for f in net(torch.rand(1, 3, 32, 32))]
        [(1, 8, 8, 8), (1, 16, 4, 4)]
    """

    def __init__(
        self,
        pretrain_img_size: int | tuple[int, int] = 224,
        in_channels: int = 3,
        embed_dims: int = 96,
        patch_size: int = 4,
        window_size: int = 7,
        mlp_ratio: float = 4,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        strides: Sequence[int] = (4, 2, 2, 2),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        patch_norm: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        use_abs_pos_embed: bool = False,
        act_cfg: Cfg = _GELU,
        norm_cfg: Cfg = _LN,
        with_cp: bool = False,
        pretrained: str | None = None,
        convert_weights: bool = False,
        frozen_stages: int = -1,
        init_cfg: _InitCfg = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.init_cfg = backbone_init_cfg(name, pretrained, init_cfg, None, stacklevel=4)
        num_layers = len(depths)
        if not len(num_heads) == len(strides) == num_layers:
            raise ConfigKeyError(
                f"{name}: depths {tuple(depths)}, num_heads {tuple(num_heads)} and strides "
                f"{tuple(strides)} need one entry per stage"
            )
        if strides[0] != patch_size:
            raise ConfigKeyError(
                f"{name}: strides[0]={strides[0]} must equal patch_size={patch_size} "
                "(non-overlapping patch embedding)"
            )
        if any(not 0 <= i < num_layers for i in out_indices):
            raise ConfigKeyError(
                f"{name}: out_indices {tuple(out_indices)} outside 0..{num_layers - 1}"
            )
        self.convert_weights = convert_weights
        self.frozen_stages = frozen_stages
        self.out_indices = tuple(out_indices)
        self.use_abs_pos_embed = use_abs_pos_embed
        self.patch_embed = PatchEmbed(
            in_channels=in_channels,
            embed_dims=embed_dims,
            kernel_size=patch_size,
            stride=strides[0],
            norm_cfg=norm_cfg if patch_norm else None,
        )
        if use_abs_pos_embed:
            rows, cols = (s // patch_size for s in to_2tuple(pretrain_img_size))
            self.absolute_pos_embed = nn.Parameter(torch.zeros((1, embed_dims, rows, cols)))
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        total = sum(depths)
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, total)]
        self.stages = nn.ModuleList()
        channels = embed_dims
        for i in range(num_layers):
            downsample = None
            if i < num_layers - 1:
                downsample = PatchMerging(
                    in_channels=channels,
                    out_channels=2 * channels,
                    stride=strides[i + 1],
                    norm_cfg=norm_cfg if patch_norm else None,
                )
            first = sum(depths[:i])
            self.stages.append(
                SwinBlockSequence(
                    embed_dims=channels,
                    num_heads=num_heads[i],
                    feedforward_channels=int(mlp_ratio * channels),
                    depth=depths[i],
                    window_size=window_size,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=rates[first : first + depths[i]],
                    downsample=downsample,
                    act_cfg=act_cfg,
                    norm_cfg=norm_cfg,
                    with_cp=with_cp,
                )
            )
            if downsample is not None:
                channels = downsample.out_channels
        self.num_features = [int(embed_dims * 2**i) for i in range(num_layers)]
        for i in self.out_indices:
            self.add_module(f"norm{i}", build_norm_layer(norm_cfg, self.num_features[i])[1])
        self._freeze_stages()

    def train(self, mode: bool = True) -> SwinTransformer:
        """Set training mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def _freeze_stages(self) -> None:
        frozen: list[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen += [self.patch_embed, self.drop_after_pos]
            if self.use_abs_pos_embed:
                self.absolute_pos_embed.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            if i - 1 in self.out_indices:
                frozen.append(getattr(self, f"norm{i - 1}"))
            frozen.append(self.stages[i - 1])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Random init (truncated normal Linear, unit LayerNorm) or the pretrained checkpoint.

        Raises:
            ConfigTypeError: ``init_cfg`` is not a ``Pretrained`` config with a checkpoint.
            CheckpointError: the checkpoint is missing or has no ``backbone.`` weights.
        """
        if self.init_cfg is None:
            if self.use_abs_pos_embed:
                nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_init(m, std=0.02, bias=0.0)
                elif isinstance(m, nn.LayerNorm):
                    constant_init(m, 1.0)
            return
        checkpoint = pretrained_checkpoint(type(self).__name__, self.init_cfg)
        state = read_checkpoint(checkpoint)[1]
        if self.convert_weights:
            state = swin_converter(state)
        # v2 keeps the ``backbone.`` entries of the (converted) checkpoint only
        state = OrderedDict((k[9:], v) for k, v in state.items() if k.startswith("backbone."))
        if not state:
            raise CheckpointError(
                f"{checkpoint}: no 'backbone.' weights for SwinTransformer (a checkpoint of the "
                "original Swin repository needs convert_weights=True)"
            )
        if next(iter(state)).startswith("module."):
            state = OrderedDict((k[7:], v) for k, v in state.items())
        self._fit_position_tables(state)
        load_state_dict(self, state, strict=False, source=checkpoint)

    def _fit_position_tables(self, state: dict[str, torch.Tensor]) -> None:
        """Reshape ``absolute_pos_embed`` ``[1, L, C]`` to ours and resize bias tables
        (bicubic) pretrained with another window size, as v2 does."""
        own = self.state_dict()
        pos = state.get("absolute_pos_embed")
        if pos is not None and self.use_abs_pos_embed:
            n2, c2, h, w = self.absolute_pos_embed.shape
            if (
                pos.dim() == 3
                and pos.shape[0] == n2
                and pos.shape[2] == c2
                and pos.shape[1] == h * w
            ):
                state["absolute_pos_embed"] = (
                    pos.view(n2, h, w, c2).permute(0, 3, 1, 2).contiguous()
                )
            else:
                _LOG.warning("absolute_pos_embed %s does not fit; not loaded", tuple(pos.shape))
        for key in [k for k in state if "relative_position_bias_table" in k and k in own]:
            table, current = state[key], own[key]
            (l1, heads1), (l2, heads2) = table.shape, current.shape
            if heads1 != heads2:
                _LOG.warning(
                    "%s: %d heads in the checkpoint, %d here; not loaded", key, heads1, heads2
                )
            elif l1 != l2:
                s1, s2 = int(l1**0.5), int(l2**0.5)
                grid = table.permute(1, 0).reshape(1, heads1, s1, s1)
                resized = F.interpolate(grid, size=(s2, s2), mode="bicubic")
                state[key] = resized.view(heads2, l2).permute(1, 0).contiguous()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``Tensor[B, C, H, W]`` -> one ``Tensor[B, C_i, H_i, W_i]`` per ``out_indices`` entry."""
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            pos: torch.Tensor = self.absolute_pos_embed
            if tuple(pos.shape[2:]) != hw_shape:
                pos = F.interpolate(pos, size=hw_shape, mode="bicubic", align_corners=False)
            x = x + pos.flatten(2).transpose(1, 2)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape, out, out_hw = stage(x, hw_shape)
            if i in self.out_indices:
                out = getattr(self, f"norm{i}")(out)
                outs.append(
                    out.view(-1, *out_hw, self.num_features[i]).permute(0, 3, 1, 2).contiguous()
                )
        return outs


def _unfold_order(x: torch.Tensor) -> torch.Tensor:
    """Reorder the 4 concatenated patch quarters of the original Swin (x0, x1, x2, x3 =
    (0,0), (1,0), (0,1), (1,1)) into ``nn.Unfold``'s channel-major order, along dim 0 of a
    ``[4C]`` vector or dim 1 of a ``[out, 4C]`` matrix."""
    if x.dim() == 1:
        return x.reshape(4, -1)[[0, 2, 1, 3]].transpose(0, 1).reshape(-1)
    out_channels, in_channels = x.shape
    quarters = x.reshape(out_channels, 4, in_channels // 4)[:, [0, 2, 1, 3]]
    return quarters.transpose(1, 2).reshape(out_channels, in_channels)


def swin_converter(ckpt: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Keys of an original-repository Swin checkpoint -> v2's ``backbone.*`` keys.

    ``layers`` -> ``stages``, ``attn.`` -> ``attn.w_msa.``, ``mlp.fc1``/``mlp.fc2`` ->
    ``ffn.layers.0.0``/``ffn.layers.1``, ``patch_embed.proj`` -> ``patch_embed.projection``;
    patch-merging ``reduction``/``norm`` tensors reordered for ``nn.Unfold``; ``head.*`` dropped.

    Example:
        >>> out = swin_converter({'layers.0.blocks.0.mlp.fc1.weight': torch.zeros(1)})
        >>> list(out)
        ['backbone.stages.0.blocks.0.ffn.layers.0.0.weight']
    """
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in ckpt.items():
        if key.startswith("head"):
            continue
        new_key = key
        if key.startswith("layers"):
            if "attn." in key:
                new_key = key.replace("attn.", "attn.w_msa.")
            elif "mlp.fc1." in key:
                new_key = key.replace("mlp.fc1.", "ffn.layers.0.0.")
            elif "mlp.fc2." in key:
                new_key = key.replace("mlp.fc2.", "ffn.layers.1.")
            elif "mlp." in key:
                new_key = key.replace("mlp.", "ffn.")
            elif "downsample" in key and ("reduction." in key or "norm." in key):
                value = _unfold_order(value)
            new_key = new_key.replace("layers", "stages", 1)
        elif key.startswith("patch_embed") and "proj" in key:
            new_key = key.replace("proj", "projection")
        out["backbone." + new_key] = value
    return out
