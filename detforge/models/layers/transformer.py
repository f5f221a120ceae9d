"""Transformer building blocks of MMDetection v2's backbones (mmcv 1.x ``bricks.transformer``).

Token maps travel as ``Tensor[B, L, C]`` with their ``(H, W)`` beside them (``L = H * W``,
row-major), as in mmcv. State-dict keys are mmcv's:

* :class:`PatchEmbed`: ``projection`` (the patchifying conv) and ``norm``;
* :class:`PatchMerging`: ``norm`` and ``reduction`` over ``nn.Unfold`` patches, whose channel
  order is ``c * kh * kw + i * kw + j`` (unfold's, not the original Swin's concatenation);
* :class:`FFN`: ``layers.0.0`` (first Linear), ``layers.1`` (second Linear);
* :class:`MultiheadAttention`: ``attn.in_proj_weight``, ``attn.out_proj.*`` (a
  ``torch.nn.MultiheadAttention`` inside).

Stochastic depth (mmcv ``DropPath``) is torchvision's ``StochasticDepth(p, 'row')``: the same
rule (keep a sample's residual with probability ``1 - p`` and scale it by ``1 / (1 - p)``),
identity in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from detforge.errors import ConfigKeyError, ConfigTypeError
from detforge.models.layers.activation import build_activation_layer
from detforge.models.layers.norm import build_norm_layer
from detforge.registry import Cfg

__all__ = [
    "FFN",
    "AdaptivePadding",
    "MultiheadAttention",
    "PatchEmbed",
    "PatchMerging",
    "build_dropout",
    "nchw_to_nlc",
    "nlc_to_nchw",
    "to_2tuple",
]

_LN = MappingProxyType({"type": "LN"})
_RELU = MappingProxyType({"type": "ReLU", "inplace": True})


def to_2tuple(value: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    """``7 -> (7, 7)``; a pair is returned as a tuple.

    Raises:
        ValueError: ``value`` is a sequence whose length is not 2.
    """
    if isinstance(value, int):
        return (value, value)
    pair = tuple(value)
    if len(pair) != 2:
        raise ValueError(f"expected an int or a pair, got {value!r}")
    return (int(pair[0]), int(pair[1]))


def nlc_to_nchw(x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
    """``Tensor[B, H*W, C]`` -> ``Tensor[B, C, H, W]``.

    Raises:
        ValueError: ``x`` is not 3-d or its length is not ``H * W``.
    """
    height, width = hw_shape
    if x.dim() != 3 or x.shape[1] != height * width:
        raise ValueError(f"expected [B, {height}*{width}, C] tokens, got {tuple(x.shape)}")
    batch, _, channels = x.shape
    return x.transpose(1, 2).reshape(batch, channels, height, width).contiguous()


def nchw_to_nlc(x: torch.Tensor) -> torch.Tensor:
    """``Tensor[B, C, H, W]`` -> ``Tensor[B, H*W, C]``."""
    if x.dim() != 4:
        raise ValueError(f"expected a [B, C, H, W] tensor, got {tuple(x.shape)}")
    return x.flatten(2).transpose(1, 2).contiguous()


def build_dropout(cfg: Cfg | None) -> nn.Module:
    """mmcv's ``build_dropout``: ``DropPath`` (stochastic depth) or ``Dropout``.

    ``dict(type='DropPath', drop_prob=p)`` or ``dict(type='Dropout', drop_prob=p)``; ``None``
    gives ``nn.Identity()``.

    Raises:
        ConfigKeyError: an unknown ``type``.

    Example:
        >>> build_dropout(dict(type='DropPath', drop_prob=0.1))
        StochasticDepth(p=0.1, mode=row)
    """
    if not cfg:
        return nn.Identity()
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(f"dropout_layer must be a dict or None, got {cfg!r}")
    args = dict(cfg)
    kind = args.pop("type", None)
    prob = float(args.pop("drop_prob", args.pop("p", 0.0)))
    if args:
        raise ConfigKeyError(f"dropout_layer {dict(cfg)!r}: unexpected keys {sorted(args)}")
    if kind == "DropPath":
        return StochasticDepth(prob, "row")
    if kind == "Dropout":
        return nn.Dropout(prob)
    raise ConfigKeyError(f"dropout_layer {dict(cfg)!r}: type must be 'DropPath' or 'Dropout'")


class AdaptivePadding(nn.Module):
    """Zero-pad so that a ``kernel_size``/``stride``/``dilation`` window covers the input.

    ``'corner'`` pads bottom/right only; ``'same'`` splits the padding like TensorFlow's SAME.

    Example:
        >>> AdaptivePadding(kernel_size=4, stride=4)(torch.zeros(1, 1, 15, 17)).shape
        torch.Size([1, 1, 16, 20])
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = 1,
        stride: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        padding: str = "corner",
    ) -> None:
        super().__init__()
        if padding not in ("same", "corner"):
            raise ValueError(
                f"AdaptivePadding: padding must be 'same' or 'corner', got {padding!r}"
            )
        self.padding = padding
        self.kernel_size = to_2tuple(kernel_size)
        self.stride = to_2tuple(stride)
        self.dilation = to_2tuple(dilation)

    def get_pad_shape(self, input_shape: tuple[int, int] | torch.Size) -> tuple[int, int]:
        """``(pad_h, pad_w)`` for an input of ``(H, W)``."""
        pads = []
        for size, kernel, stride, dilation in zip(
            input_shape, self.kernel_size, self.stride, self.dilation, strict=True
        ):
            out = math.ceil(size / stride)
            pads.append(max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0))
        return pads[0], pads[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = self.get_pad_shape(x.shape[-2:])
        if pad_h == 0 and pad_w == 0:
            return x
        if self.padding == "corner":
            return F.pad(x, [0, pad_w, 0, pad_h])
        return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])


class PatchEmbed(nn.Module):
    """Image to tokens: a strided conv (``projection``), flattened, then ``norm``.

    Args:
        in_channels: Input channels.
        embed_dims: Token channels.
        kernel_size: Conv kernel size.
        stride: Conv stride (``None``: ``kernel_size``).
        padding: Conv padding, or ``'corner'``/``'same'`` for :class:`AdaptivePadding`.
        dilation: Conv dilation.
        bias: Conv bias.
        norm_cfg: Norm over the token channels (``None``: none).

    Example:
        >>> tokens, hw = PatchEmbed(embed_dims=8, kernel_size=4, stride=4)(torch.rand(1, 3, 30, 32))
        >>> tuple(tokens.shape), hw
        ((1, 64, 8), (8, 8))
    """

    def __init__(
        self,
        in_channels: int = 3,
        embed_dims: int = 768,
        kernel_size: int | tuple[int, int] = 16,
        stride: int | tuple[int, int] | None = 16,
        padding: int | tuple[int, int] | str = "corner",
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        norm_cfg: Cfg | None = None,
    ) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        stride = kernel_size if stride is None else stride
        self.adap_padding: AdaptivePadding | None = None
        if isinstance(padding, str):
            self.adap_padding = AdaptivePadding(kernel_size, stride, dilation, padding)
            padding = 0
        self.projection = nn.Conv2d(
            in_channels,
            embed_dims,
            kernel_size=to_2tuple(kernel_size),
            stride=to_2tuple(stride),
            padding=to_2tuple(padding),
            dilation=to_2tuple(dilation),
            bias=bias,
        )
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1] if norm_cfg is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``Tensor[B, C, H, W]`` -> ``(Tensor[B, h*w, embed_dims], (h, w))``."""
        if self.adap_padding is not None:
            x = self.adap_padding(x)
        x = self.projection(x)
        hw_shape = (int(x.shape[2]), int(x.shape[3]))
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw_shape


class PatchMerging(nn.Module):
    """Merge each ``kernel_size`` patch of tokens into one token (``nn.Unfold`` + Linear).

    Args:
        in_channels: Input token channels.
        out_channels: Output token channels.
        kernel_size: Patch size.
        stride: Patch stride (``None``: ``kernel_size``).
        padding: Unfold padding, or ``'corner'``/``'same'`` for :class:`AdaptivePadding`.
        dilation: Unfold dilation.
        bias: Bias of ``reduction``.
        norm_cfg: Norm over the ``kh * kw * in_channels`` unfolded channels (``None``: none).

    Example:
        >>> merge = PatchMerging(in_channels=4, out_channels=8)
        >>> tokens, hw = merge(torch.rand(1, 5 * 7, 4), (5, 7))
        >>> tuple(tokens.shape), hw
        ((1, 12, 8), (3, 4))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] | str = "corner",
        dilation: int | tuple[int, int] = 1,
        bias: bool = False,
        norm_cfg: Cfg | None = _LN,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        stride = stride or kernel_size
        self.adap_padding: AdaptivePadding | None = None
        if isinstance(padding, str):
            self.adap_padding = AdaptivePadding(kernel_size, stride, dilation, padding)
            padding = 0
        self.sampler = nn.Unfold(
            kernel_size=to_2tuple(kernel_size),
            dilation=to_2tuple(dilation),
            padding=to_2tuple(padding),
            stride=to_2tuple(stride),
        )
        kh, kw = to_2tuple(kernel_size)
        sample_dim = kh * kw * in_channels
        self.norm = build_norm_layer(norm_cfg, sample_dim)[1] if norm_cfg is not None else None
        self.reduction = nn.Linear(sample_dim, out_channels, bias=bias)

    def forward(
        self, x: torch.Tensor, input_size: tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(Tensor[B, H*W, C_in], (H, W))`` -> ``(Tensor[B, h*w, C_out], (h, w))``."""
        batch, length, channels = x.shape
        height, width = input_size
        if length != height * width:
            raise ValueError(f"PatchMerging: {length} tokens for a {height}x{width} map")
        x = x.view(batch, height, width, channels).permute(0, 3, 1, 2)
        if self.adap_padding is not None:
            x = self.adap_padding(x)
            height, width = int(x.shape[-2]), int(x.shape[-1])
        x = self.sampler(x)
        sizes = []
        for size, pad, dil, kernel, stride in zip(
            (height, width),
            to_2tuple(self.sampler.padding),
            to_2tuple(self.sampler.dilation),
            to_2tuple(self.sampler.kernel_size),
            to_2tuple(self.sampler.stride),
            strict=True,
        ):
            sizes.append((size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1)
        x = x.transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x), (sizes[0], sizes[1])


class FFN(nn.Module):
    """mmcv's feed-forward block: ``num_fcs`` Linear layers with an activation and dropout.

    ``out = identity + dropout_layer(layers(x))`` (``identity`` defaults to ``x``) when
    ``add_identity``, else ``dropout_layer(layers(x))``.

    Args:
        embed_dims: Input and output channels.
        feedforward_channels: Hidden channels.
        num_fcs: Linear layers (at least 2).
        act_cfg: Activation after each hidden Linear.
        ffn_drop: Dropout probability after each Linear.
        dropout_layer: Applied to the branch before the identity is added (``DropPath``).
        add_identity: Add the shortcut.

    Example:
        >>> ffn = FFN(embed_dims=4, feedforward_channels=8)
        >>> [k for k in ffn.state_dict()]
        ['layers.0.0.weight', 'layers.0.0.bias', 'layers.1.weight', 'layers.1.bias']
    """

    def __init__(
        self,
        embed_dims: int = 256,
        feedforward_channels: int = 1024,
        num_fcs: int = 2,
        act_cfg: Cfg = _RELU,
        ffn_drop: float = 0.0,
        dropout_layer: Cfg | None = None,
        add_identity: bool = True,
    ) -> None:
        super().__init__()
        if num_fcs < 2:
            raise ValueError(f"FFN: num_fcs must be at least 2, got {num_fcs}")
        self.embed_dims = embed_dims
        self.feedforward_channels = feedforward_channels
        layers: list[nn.Module] = []
        in_channels = embed_dims
        for _ in range(num_fcs - 1):
            layers.append(
                nn.Sequential(
                    nn.Linear(in_channels, feedforward_channels),
                    build_activation_layer(act_cfg),
                    nn.Dropout(ffn_drop),
                )
            )
            in_channels = feedforward_channels
        layers += [nn.Linear(feedforward_channels, embed_dims), nn.Dropout(ffn_drop)]
        self.layers = nn.Sequential(*layers)
        self.dropout_layer = build_dropout(dropout_layer)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor, identity: torch.Tensor | None = None) -> torch.Tensor:
        out = self.dropout_layer(self.layers(x))
        if not self.add_identity:
            return out
        return (x if identity is None else identity) + out


class MultiheadAttention(nn.Module):
    """mmcv's wrapper of ``torch.nn.MultiheadAttention`` (``attn``) with a residual.

    ``out = identity + dropout_layer(proj_drop(attn(query, key, value)))``; ``identity``
    defaults to ``query``, ``key`` to ``query`` and ``value`` to ``key``.

    Args:
        embed_dims: Token channels.
        num_heads: Attention heads.
        attn_drop: Dropout on the attention weights.
        proj_drop: Dropout after the output projection.
        dropout_layer: Applied before the residual add (``DropPath``).
        batch_first: Tokens are ``[B, L, C]`` (else ``[L, B, C]``).
        bias: Bias of the input/output projections.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        dropout_layer: Cfg | None = MappingProxyType({"type": "Dropout", "drop_prob": 0.0}),
        batch_first: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.batch_first = batch_first
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=attn_drop, bias=bias)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dropout_layer = build_dropout(dropout_layer)

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``dropout_layer(proj_drop(attn(query, key, value)))`` in the caller's layout."""
        if self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out = self.attn(query=query, key=key, value=value, need_weights=False)[0]
        if self.batch_first:
            out = out.transpose(0, 1)
        return self.dropout_layer(self.proj_drop(out))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        identity: torch.Tensor | None = None,
    ) -> torch.Tensor:
        key = query if key is None else key
        value = key if value is None else value
        identity = query if identity is None else identity
        return identity + self.attend(query, key, value)
